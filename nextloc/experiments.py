"""The experiment registry (``experiments.yaml``) and one experiment run, as a notebook calls it.

An experiment is a model plus training settings; keys of :class:`TrainConfig` are training
settings, ``model.<option>`` keys (or a ``model_options`` mapping) are the model's options.
Two keys are resolved from earlier results rather than typed in:

- ``search: NAME`` takes the hyperparameters of the best validation trial of that search;
- ``epochs_from: EXPERIMENT`` sets ``epochs`` to the median best epoch (chosen on validation)
  of that experiment's runs, for refits on train + validation.

String settings may name earlier runs' checkpoints with placeholders, filled in per run:
``{checkpoints}`` (the checkpoint folder of full or quick runs, relative to the project root), ``{seed}`` (this run's seed) and
``{next_seed}`` (the next seed in the experiment's list, cyclically).
"""
from __future__ import annotations

import fcntl
import math
import hashlib
import json
import os
from dataclasses import fields
from pathlib import Path

import pandas as pd
import yaml

from nextloc.data import PROJECT_ROOT, load_dataset
from nextloc.errors import ConfigError
from nextloc.train import RunResult, TrainConfig, train

REGISTRY_FILE = PROJECT_ROOT / "experiments.yaml"
RESULTS_DIR = PROJECT_ROOT / "results"
METRICS_FILE = RESULTS_DIR / "metrics.csv"
RUN_SCRATCH = PROJECT_ROOT / "runs"
QUICK_SETTINGS = {"epochs": 2, "max_batches": 8, "warmup_epochs": 1}
METRICS_COLUMNS = ["experiment", "model", "seed", "n_params", "best_epoch", "val_acc1",
                   "test_acc1", "test_acc5", "test_acc10", "test_mrr", "test_ndcg10", "test_f1",
                   "train_seconds", "device"]
# Keys of an experiment that describe or resolve it rather than set a training option.
METADATA_KEYS = frozenset({"seeds", "search", "epochs_from", "notebook", "description",
                           "prior_report_acc1", "prior_report_by_seed"})


def load_registry(path: Path | None = None) -> dict:
    path = path or REGISTRY_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: experiment registry not found.")
    return yaml.safe_load(path.read_text())


def train_config(settings: dict, **overrides) -> TrainConfig:
    """A TrainConfig from flat settings; ``model.x`` keys become model options."""
    known = {f.name for f in fields(TrainConfig)}
    config, options = {}, dict(settings.get("model_options", {}))
    for key, value in {**settings, **overrides}.items():
        if key.startswith("model."):
            options[key.removeprefix("model.")] = value
        elif key in known and key != "model_options":
            config[key] = value
        elif key not in METADATA_KEYS | {"model_options"}:
            raise ConfigError(f"unknown setting '{key}'; training settings are {sorted(known)}, "
                              f"model options are written 'model.<option>'.")
    return TrainConfig(**config, model_options=options)


def median_best_epoch(experiment: str) -> int:
    runs = read_metrics()
    runs = runs[runs["experiment"] == experiment]
    if runs.empty:
        raise ConfigError(f"epochs_from: no runs of '{experiment}' in {METRICS_FILE} yet; run "
                          f"`nextloc run {experiment}` first.")
    return int(math.floor(runs["best_epoch"].median() + 0.5))  # half up: 5.5 -> 6


def experiment_settings(name: str, quick: bool = False) -> dict:
    """The fully resolved settings of one experiment (what its config hash is computed on)."""
    from nextloc.search import best_point

    experiments = load_registry()["experiments"]
    if name not in experiments:
        raise ConfigError(f"unknown experiment '{name}'; experiments.yaml defines "
                          f"{sorted(experiments)}")
    spec = dict(experiments[name])
    settings = {k: v for k, v in spec.items() if k not in METADATA_KEYS}
    if "search" in spec:
        settings = {**best_point(spec["search"]), **settings}
    if "epochs_from" in spec and not quick:
        settings["epochs"] = median_best_epoch(spec["epochs_from"])
    if name.endswith("_over_budget"):
        settings["over_budget_ok"] = True
    if quick:
        settings.update(QUICK_SETTINGS)
    return settings


def config_hash(settings: dict, seed: int) -> str:
    return hashlib.sha256(json.dumps({**settings, "seed": seed}, sort_keys=True,
                                     default=str).encode()).hexdigest()[:12]


def run_dir(experiment: str, seed: int, quick: bool) -> Path:
    base = RUN_SCRATCH / "quick" / "results" if quick else RESULTS_DIR / "runs"
    return base / experiment / f"seed_{seed}"


def checkpoint_path(experiment: str, seed: int, quick: bool) -> Path:
    return (RUN_SCRATCH / ("quick" if quick else "full") / "checkpoints" / experiment
            / f"seed_{seed}.safetensors")


def fill_placeholders(value, fields: dict):
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, list):
        return [fill_placeholders(v, fields) for v in value]
    return value


def run_settings(experiment: str, seed: int, quick: bool) -> dict:
    """The experiment's settings with this run's placeholders filled in."""
    settings = experiment_settings(experiment, quick)
    seeds = load_registry()["experiments"][experiment]["seeds"]
    following = seeds[(seeds.index(seed) + 1) % len(seeds)] if seed in seeds else seed
    root = (RUN_SCRATCH / ("quick" if quick else "full") / "checkpoints").relative_to(PROJECT_ROOT)
    fields = {"checkpoints": str(root), "seed": seed, "next_seed": following}
    return {key: fill_placeholders(value, fields) for key, value in settings.items()}


def run_experiment(experiment: str, seed: int, quick: bool = True,
                   device: str = "auto", num_threads: int | None = None) -> RunResult:
    """Train one (experiment, seed), save its files, and record it in results/metrics.csv.

    Quick runs write only under ``runs/quick`` and never touch the results."""
    settings = run_settings(experiment, seed, quick)
    config = train_config(settings, seed=seed, device=device, num_threads=num_threads)
    result = train(config, load_dataset(), checkpoint=checkpoint_path(experiment, seed, quick))
    out_dir = run_dir(experiment, seed, quick)
    result.save(out_dir, experiment)
    stamp = {"config_hash": config_hash(settings, seed), "quick": quick}
    (out_dir / "stamp.json").write_text(json.dumps(stamp))
    if not quick:
        record_metrics(result.metrics_row(experiment))
    return result


SUPERSEDED_DIR = RESULTS_DIR / "superseded"


def archive_runs(experiment: str, label: str) -> Path:
    """Move an experiment's finished runs out of the live results, before a changed configuration
    replaces them: its rows of metrics.csv and its run folders go to results/superseded/<label>/,
    where the book still reports them. Tested configurations are never silently overwritten."""
    import shutil

    target = SUPERSEDED_DIR / label
    if target.exists():
        raise ConfigError(f"{target} exists already; choose another label.")
    table = read_metrics()
    rows = table[table["experiment"] == experiment]
    if rows.empty:
        raise ConfigError(f"no runs of '{experiment}' in {METRICS_FILE} to archive.")
    target.mkdir(parents=True)
    rows.to_csv(target / "metrics.csv", index=False)
    shutil.move(str(RESULTS_DIR / "runs" / experiment), str(target / "runs"))
    notebooks = PROJECT_ROOT / "book" / "runs" / experiment
    if notebooks.is_dir():
        shutil.move(str(notebooks), str(target / "notebooks"))
    update_metrics(lambda table: table[table["experiment"] != experiment])
    return target


def read_metrics(path: Path | None = None) -> pd.DataFrame:
    path = path or METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=METRICS_COLUMNS)
    return pd.read_csv(path)


def update_metrics(change, path: Path | None = None) -> None:
    """Rewrite the metrics table as ``change(table)``: a lock keeps parallel runs from racing,
    and the table is written to a temporary file and renamed."""
    path = path or METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".metrics.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = change(read_metrics(path))
        tmp = path.with_name(f".{path.name}.tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)


def record_metrics(row: dict, path: Path | None = None) -> None:
    """Insert or replace the (experiment, seed) row."""
    def replace_row(table: pd.DataFrame) -> pd.DataFrame:
        keep = ~((table["experiment"] == row["experiment"]) & (table["seed"] == row["seed"]))
        table = pd.concat([table[keep], pd.DataFrame([row])], ignore_index=True)
        return table.sort_values(["experiment", "seed"])[METRICS_COLUMNS]

    update_metrics(replace_row, path)
