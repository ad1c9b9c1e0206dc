"""One experiment run, as the training notebook calls it: resolve the settings, train, save the
run's files and record its row in ``results/metrics.csv``. The run's stamp (what makes
``nextloc run`` skip it) is the runner's to write, once the whole notebook has finished."""
from __future__ import annotations

from nextloc.core import paths
from nextloc.core.errors import ConfigError, shorten
from nextloc.data.dataset_names import check_dataset_folder, experiment_dataset
from nextloc.data.split import load_dataset
from nextloc.experiments.registry import epochs_from, load_registry, run_settings, train_config
from nextloc.experiments.results import record_metrics
from nextloc.training.loop import RunResult, train


def check_parameters(experiment, quick, data=None) -> None:
    """The notebook's papermill parameters that TrainConfig does not check itself."""
    if not isinstance(experiment, str):
        raise ConfigError(f"parameter experiment must be an experiment name; got "
                          f"{shorten(repr(experiment), 60)}.")
    if not isinstance(quick, bool):
        raise ConfigError(f"parameter quick must be True or False; got "
                          f"{shorten(repr(quick), 60)}.")
    if data is not None and not isinstance(data, str):
        raise ConfigError(f"parameter data must be a folder or None; got "
                          f"{shorten(repr(data), 60)}.")


def train_and_record_seed(experiment: str, seed: int, quick: bool = True, device: str = "auto",
                          num_threads: int | None = None, data: str | None = None) -> RunResult:
    """Train one (experiment, seed), save its files, and record it in results/metrics.csv.

    Quick runs write only under ``runs/quick`` and never touch the results. A refit's config.json
    records where its epochs came from (``epochs_from``: the runs and their best epochs).
    ``data``: the report's data folder given with ``nextloc run --data`` (None: the default)."""
    check_parameters(experiment, quick, data)
    settings = run_settings(experiment, seed, quick)
    config = train_config(settings, seed=seed, device=device, num_threads=num_threads)
    spec = load_registry()["experiments"][experiment]
    provenance = epochs_from(spec["epochs_from"]) if "epochs_from" in spec and not quick else None
    dataset = experiment_dataset(spec)
    result = train(config, load_dataset(check_dataset_folder(experiment, dataset, data)),
                   checkpoint=paths.checkpoint_path(experiment, seed, quick))
    if provenance:
        result.config["epochs_from"] = provenance
    result.save(paths.run_dir(experiment, seed, quick), experiment)
    if not quick:
        record_metrics({**result.metrics_row(experiment), "dataset": dataset})
    return result
