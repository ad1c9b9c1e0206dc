"""One experiment run, as the training notebook calls it: resolve the settings, train, save the
run's files and record its row in ``results/metrics.csv``."""
from __future__ import annotations

import json

from nextloc import paths
from nextloc.data import load_dataset
from nextloc.registry import config_hash, run_settings, train_config
from nextloc.results import record_metrics
from nextloc.train import RunResult, train


def run_experiment(experiment: str, seed: int, quick: bool = True,
                   device: str = "auto", num_threads: int | None = None) -> RunResult:
    """Train one (experiment, seed), save its files, and record it in results/metrics.csv.

    Quick runs write only under ``runs/quick`` and never touch the results."""
    settings = run_settings(experiment, seed, quick)
    config = train_config(settings, seed=seed, device=device, num_threads=num_threads)
    result = train(config, load_dataset(),
                   checkpoint=paths.checkpoint_path(experiment, seed, quick))
    out_dir = paths.run_dir(experiment, seed, quick)
    result.save(out_dir, experiment)
    stamp = {"config_hash": config_hash(settings, seed), "quick": quick}
    paths.atomic_write(out_dir / "stamp.json", lambda tmp: tmp.write_text(json.dumps(stamp)))
    if not quick:
        record_metrics(result.metrics_row(experiment))
    return result
