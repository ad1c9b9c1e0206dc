"""The experiment registry (``experiments/*.yaml``, merged by :mod:`.registry_files`) and the
resolution of an experiment's settings.

An experiment is a model plus training settings; keys of :class:`TrainConfig` are training
settings, ``model.<option>`` keys (or a ``model_options`` mapping) are the model's options.
Two keys are resolved from earlier results rather than typed in:

- ``search: NAME`` takes the hyperparameters of the best validation trial of that search;
- ``epochs_from: EXPERIMENT`` sets ``epochs`` to the median best epoch (chosen on validation)
  of that experiment's runs, for refits on train + validation.

An ``ablations:`` entry expands into experiments: ``BASE: {seeds: [...], without: [...]}`` gives one
experiment ``BASE_no_X`` per switch X, with BASE's settings and ``model.X: false``; a switch
written as a mapping (``X: {setting: value}``) sets those settings instead, and may list its
own ``seeds``.

String settings may name earlier runs' checkpoints with placeholders, filled in per run:
``{checkpoints}`` (the checkpoint folder of full or quick runs, relative to the project root),
``{seed}`` (this run's seed) and ``{next_seed}`` (the next seed in the experiment's list,
cyclically).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import statistics
from dataclasses import fields

from nextloc.core import paths
from nextloc.experiments import results
from nextloc.core.errors import ConfigError, shorten
from nextloc.data.dataset_names import experiment_dataset
from nextloc.experiments.registry_check import METADATA_KEYS, check_ablations, check_registry
from nextloc.experiments.registry_files import read_registry_files
from nextloc.training.settings import TrainConfig

QUICK_SETTINGS = {"epochs": 2, "max_batches": 8, "warmup_epochs": 1}
PLACEHOLDERS = ("checkpoints", "seed", "next_seed")
# What an ablation does not inherit from its base experiment: the base's own identity.
NOT_INHERITED = frozenset({"seeds", "description", "prior_report_acc1", "prior_report_by_seed"})


_CACHE: dict = {}  # (folder, its files' names and hashes) -> the checked registry, parsed once


def load_registry() -> dict:
    """The registry of experiments/*.yaml, merged, with its ``ablations:`` expanded into
    experiments (a fresh copy)."""
    folder = paths.REGISTRY_DIR
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    key = (str(folder), tuple((path.name, hashlib.sha1(path.read_bytes()).hexdigest())
                              for path in files))
    if not files or key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = read_registry(folder)
    return copy.deepcopy(_CACHE[key])


def headline_experiments() -> list[str]:
    """The experiments the report stands behind, ``[train_only, refit]`` (the registry's
    ``headline:``), or [] when the registry names none."""
    headline = load_registry().get("headline") or {}
    return [headline[key] for key in ("train_only", "refit") if key in headline]


def read_registry(folder) -> dict:
    registry = read_registry_files(folder)
    check_ablations(registry.get("ablations") or {}, registry["experiments"])
    registry["experiments"] = expand_ablations(registry["experiments"],
                                               registry.get("ablations") or {})
    check_registry(registry, str(folder))
    return registry


def expand_ablations(experiments: dict, ablations: dict) -> dict:
    expanded = dict(experiments)
    for base, spec in ablations.items():
        if base not in experiments:
            raise ConfigError(f"ablations: '{base}' is not an experiment of the registry")
        inherited = {k: v for k, v in experiments[base].items() if k not in NOT_INHERITED}
        for switch, settings in switch_settings(spec.get("without", [])).items():
            name = f"{base}_no_{switch}"
            if name in expanded:
                raise ConfigError(f"ablations: '{name}' is defined twice")
            description = f"{base} without {switch.replace('_', ' ')}"
            # A switch may list its own seeds (more of them where its interval needs them).
            expanded[name] = {**inherited, "description": description, "seeds": spec["seeds"],
                              **settings}
    return expanded


def switch_settings(without: list) -> dict[str, dict]:
    """``[a, {b: {...}}]`` -> ``{a: {"model.a": False}, b: {...}}``."""
    switches = {}
    for entry in without:
        if isinstance(entry, str):
            switches[entry] = {f"model.{entry}": False}
        else:
            switches.update(entry)
    return switches


def ablations_of(base: str) -> list[str]:
    """The ablation experiments of ``base``, in the order the registry lists them."""
    spec = (load_registry().get("ablations") or {}).get(base, {})
    return [f"{base}_no_{switch}" for switch in switch_settings(spec.get("without", []))]


def train_config(settings: dict, **overrides) -> TrainConfig:
    """A TrainConfig from flat settings; ``model.x`` keys become model options."""
    known = {f.name for f in fields(TrainConfig)}
    config, options = {}, dict(settings.get("model_options") or {})
    for key, value in {**settings, **overrides}.items():
        if key.startswith("model."):
            options[key.removeprefix("model.")] = value
        elif key in known and key != "model_options":
            config[key] = value
        elif key not in METADATA_KEYS | {"model_options"}:
            raise ConfigError(f"unknown setting '{key}'; training settings are {sorted(known)}, "
                              f"model options are written 'model.<option>'.")
    return TrainConfig(**config, model_options=options)


def epochs_from(experiment: str) -> dict:
    """How a refit's epochs are chosen: the median best epoch (chosen on validation) of
    ``experiment``'s runs on the seeds the registry lists for it, half up (5.5 -> 6). Runs of
    other seeds (``nextloc run EXPERIMENT --seeds ...``) do not count. Returns the epochs with the
    per-seed best epochs they came from, which the refit's config.json records."""
    seeds = load_registry()["experiments"][experiment]["seeds"]
    runs = results.read_metrics(dataset=None)
    runs = runs[(runs["experiment"] == experiment) & runs["seed"].isin(seeds)]
    best = dict(zip(runs["seed"].astype(int), runs["best_epoch"].astype(int)))
    missing = [seed for seed in seeds if seed not in best]
    if missing:
        raise ConfigError(f"epochs_from: no runs of '{experiment}' for seed(s) {missing} in "
                          f"{paths.METRICS_FILE}; run `nextloc run {experiment}` first.")
    epochs = int(math.floor(statistics.median(best.values()) + 0.5))
    return {"experiment": experiment, "seeds": seeds, "best_epochs": [best[s] for s in seeds],
            "epochs": epochs}


def median_best_epoch(experiment: str) -> int:
    return epochs_from(experiment)["epochs"]


def experiment_settings(name: str, quick: bool = False, resolve_epochs: bool = True) -> dict:
    """The fully resolved settings of one experiment (what its config hash is computed on).
    ``resolve_epochs=False`` leaves ``epochs_from`` unresolved, for checks made before the runs
    it reads exist."""
    experiments = load_registry()["experiments"]
    if name not in experiments:
        raise ConfigError(f"unknown experiment '{name}'; the registry defines "
                          f"{sorted(experiments)}")
    spec = dict(experiments[name])
    settings = {k: v for k, v in spec.items() if k not in METADATA_KEYS}
    if "search" in spec:
        settings = {**best_point(spec["search"]), **settings}
    if "epochs_from" in spec and not quick and resolve_epochs:
        settings["epochs"] = median_best_epoch(spec["epochs_from"])
    if name.endswith("_over_budget"):
        settings["over_budget_ok"] = True
    if quick:
        settings.update(QUICK_SETTINGS)
    return settings


def config_hash(settings: dict, seed: int) -> str:
    return hashlib.sha256(json.dumps({**settings, "seed": seed}, sort_keys=True,
                                     default=str).encode()).hexdigest()[:12]


def fill_placeholders(value, fields: dict):
    if isinstance(value, str):
        try:
            return value.format(**fields)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"setting {shorten(repr(value), 80)}: bad placeholder ({err}); "
                              f"the placeholders are {{{'}, {'.join(PLACEHOLDERS)}}} (write "
                              f"{{{{ and }}}} for literal braces).") from None
    if isinstance(value, list):
        return [fill_placeholders(v, fields) for v in value]
    return value


def run_settings(experiment: str, seed: int, quick: bool, resolve_epochs: bool = True) -> dict:
    """The experiment's settings with this run's placeholders filled in."""
    settings = experiment_settings(experiment, quick, resolve_epochs)
    seeds = load_registry()["experiments"][experiment]["seeds"]
    following = seeds[(seeds.index(seed) + 1) % len(seeds)] if seed in seeds else seed
    fields = {**search_placeholders(seed, quick), "next_seed": following}
    return {key: fill_placeholders(value, fields) for key, value in settings.items()}


def search_placeholders(seed: int, quick: bool = False) -> dict:
    """The placeholders of a search trial's settings (those of a run, where the trial's seed is
    also the next seed); a search reads the checkpoints of full runs."""
    root = paths.checkpoints_dir(quick)
    if root.is_relative_to(paths.PROJECT_ROOT):  # relative paths are read from the project root
        root = root.relative_to(paths.PROJECT_ROOT)
    return {"checkpoints": str(root), "seed": seed, "next_seed": seed}


def search_spec(name: str) -> dict:
    searches = load_registry().get("searches", {})
    if name not in searches:
        raise ConfigError(f"unknown search '{name}'; defined in the registry: "
                          f"{sorted(searches)}")
    return searches[name]


def chosen_trial(name: str):
    """The trials-table row of the point the search chose: its best trial by validation Acc@1,
    unless that does not beat the point its base search chose (then that one, from its table).
    The comparison is with the base's choice, not with the base's own best trial, which a step
    that kept its own base's point did not choose."""
    return choice(name)[1]


def choice(name: str) -> tuple[str, object]:
    """(the search whose trial was chosen, that trial's row), for :func:`chosen_trial`."""
    spec = search_spec(name)
    best = results.best_trial(name)
    # A base search on another dataset lends its settings, not its score: validation Acc@1 of
    # two datasets do not compare, so the child's best trial is the choice.
    if "base_search" in spec and same_dataset(spec, search_spec(spec["base_search"])):
        source, base = choice(spec["base_search"])
        if best["val_acc1"] <= base["val_acc1"]:
            return source, base
    return name, best


def same_dataset(spec: dict, other: dict) -> bool:
    return experiment_dataset(spec) == experiment_dataset(other)


def best_point(name: str) -> dict:
    """The hyperparameters the search chose (:func:`chosen_trial`), on top of its base search's
    point, if it has one."""
    spec = search_spec(name)
    inherited = best_point(spec["base_search"]) if "base_search" in spec else {}
    source, best = choice(name)
    if source != name:
        return inherited
    return {**inherited, **spec["base"], **json.loads(best["trial"])}
