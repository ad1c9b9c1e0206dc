"""``nextloc train``: one model on any dataset folder, outside the experiment registry.

The settings are the registry's own experiment for the model (``pointer`` -> the resolved
``pointer`` experiment of the registry, its searched hyperparameters included; ``markov`` ->
``markov``), or a YAML file in the registry's flat form (training settings and
``model.<option>`` keys). The dataset gets the standard split of Hong et al. (2023); early
stopping looks at validation only, and the chosen weights are evaluated once on test. Nothing
is written to results/: the metrics are printed (JSON with ``--json``).
"""
from __future__ import annotations

from pathlib import Path

from nextloc.data.split import load_dataset
from nextloc.core.device import resolve_device
from nextloc.core.errors import ConfigError
from nextloc.experiments.registry import experiment_settings, load_registry, train_config
from nextloc.training.loop import train

# Keys of a registry experiment that tie it to other runs: such experiments are not used here.
LINKED = ("refit", "epochs_from")


def registry_settings(model: str) -> tuple[dict, str]:
    """(settings, where they came from) for ``model``: the experiment of that name, else the
    first experiment of the registry that trains ``model`` on its own, else plain defaults."""
    experiments = load_registry()["experiments"]

    def standalone(name: str) -> bool:
        spec = experiments[name]
        if spec.get("model") != model or any(spec.get(key) for key in LINKED):
            return False
        # Resolved: a searched point may name other runs' checkpoints (a teacher) too.
        return not any("{" in str(value) for value in experiment_settings(name).values()
                       if isinstance(value, (str, list)))

    names = [name for name in experiments if standalone(name)]
    names.sort(key=lambda name: name != model)
    if not names:
        return {"model": model}, "defaults of nextloc.training.settings.TrainConfig"
    return experiment_settings(names[0]), f"registry: {names[0]}"


def file_settings(path: str | Path, model: str | None) -> tuple[dict, str]:
    from nextloc.core.config_file import read_yaml  # YAML 1.2 numbers: lr: 1e-3 is a float

    try:
        settings = read_yaml(path, "settings file")
    except (OSError, UnicodeDecodeError, ConfigError) as err:
        first_line = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{path}: cannot read the training settings ({first_line[:160]}).")
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: must be a mapping of setting: value, as an experiment of "
                          f"the registry (model, lr, ..., model.<option>).")
    if model is not None and settings.setdefault("model", model) != model:
        raise ConfigError(f"--model {model} disagrees with model: {settings['model']} in {path}.")
    if "model" not in settings:
        raise ConfigError(f"{path}: no model; add 'model: NAME' or pass --model.")
    if "device" in settings or "num_threads" in settings:  # --device would override them unseen
        raise ConfigError(f"{path}: {sorted(set(settings) & {'device', 'num_threads'})} are not "
                          f"settings of a file; pass --device instead (one thread is used).")
    registry_only = sorted(set(settings) & {"search", "epochs_from", "seeds"})
    if registry_only:
        raise ConfigError(f"{path}: {registry_only} only work inside the registry; write the "
                          f"settings out (and pass --seed N).")
    return settings, str(path)


def train_on_dataset(data_dir: str | Path | None, model: str | None = None,
                     config_file: str | Path | None = None, seed: int = 42,
                     device: str = "auto", previous_day: int | None = None,
                     epochs: int | None = None, progress: bool = True) -> dict:
    """Train one model on a dataset folder; returns what ``nextloc train --json`` prints."""
    if config_file is not None:
        settings, source = file_settings(config_file, model)
    elif model is not None:
        settings, source = registry_settings(model)
    else:
        raise ConfigError("name a model (--model pointer, --model markov, ...) or a --config file.")
    resolve_device(device)  # a missing GPU is reported before the data is read
    overrides = {"seed": seed, "device": device}
    if epochs is not None:
        overrides["epochs"] = epochs
    config = train_config(settings, **overrides)
    data = load_dataset(data_dir, previous_day=previous_day)
    try:
        result = train(config, data, progress=progress)
    except ConfigError as err:
        if "over the budget" not in str(err):
            raise
        # the first part names the sizes (locations, users); the cause may be any of them
        raise ConfigError(f"{str(err).split(';')[0]}; pass a --config file with smaller "
                          f"model options (dim, clusters, ...), or over_budget_ok: true to "
                          f"train it anyway.") from err
    keep = ("acc1", "acc5", "acc10", "mrr", "ndcg10", "f1", "n")
    return {"data": str(data_dir) if data_dir is not None else "default", "model": config.model,
            "settings": source, "seed": seed, "device": result.device,
            "n_params": result.n_params, "best_epoch": result.best_epoch,
            "epochs_run": len(result.history), "train_seconds": round(result.train_seconds, 3),
            "samples": {name: len(split) for name, split in data.splits.items()},
            "num_classes": data.num_locations, "num_users": data.num_users,
            "validation": {k: result.val[k] for k in keep},
            "test": {k: result.test[k] for k in keep}, "notes": list(data.notes)}


def format_report(report: dict) -> str:
    """The plain-text form of :func:`train_on_dataset`'s result."""
    lines = [f"{report['model']} on {report['data']} (settings: {report['settings']}), seed "
             f"{report['seed']}, {report['device']}",
             f"{report['n_params']:,} parameters; best epoch {report['best_epoch']} of "
             f"{report['epochs_run']}; {report['train_seconds']:.1f} s of training",
             "samples: " + ", ".join(f"{k} {v:,}" for k, v in report["samples"].items())
             + f"; {report['num_classes']:,} classes (padding and unseen included)",
             f"{'':<11}{'Acc@1':>8}{'Acc@5':>8}{'Acc@10':>8}{'MRR':>8}{'NDCG@10':>9}{'F1':>8}"]
    for split in ("validation", "test"):
        m = report[split]
        lines.append(f"{split:<11}" + "".join(f"{100 * m[k]:>8.2f}" for k in
                                             ("acc1", "acc5", "acc10", "mrr"))
                     + f"{100 * m['ndcg10']:>9.2f}{100 * m['f1']:>8.2f}")
    return "\n".join(lines + [f"note: {note}" for note in report["notes"]])
