"""``nextloc benchmark``: how long preprocessing and training take, and how that grows.

- ``preprocess``: the raw-GPS pipeline on generated Geolife-like tracks of 40, 130 and 400
  users, one fresh process per run (:mod:`nextloc.preprocess.scaling`): seconds and the peak
  memory of the largest process, written to ``results/benchmarks/preprocess_scaling.json``.
- ``preprocess --raw DIR``: the raw-GPS pipeline on the shipped Geolife sample, and on the sample's users
  copied 2 and 3 times (more users and points, same tracks), with the relaxed options the sample
  needs. The seconds per million GPS points give a linear projection for the full Geolife
  release (24.9 M points). Written to ``results/benchmarks/preprocess.json``.
- ``training``: synthetic staypoint tables (:mod:`nextloc.data.synthetic`) with more users (more
  samples) at a fixed number of places, and more places at fixed users: sample building, one
  epoch of the headline pointer model (one thread, as in the report's runs), and markov.
  Written to ``results/benchmarks/training_scaling.json``.

Benchmarks are never run by the tests; they measure the machine they run on (recorded in the
file, with its load at the time).
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from nextloc.core.errors import ResultsError
from nextloc.core import paths
from nextloc.core.paths import atomic_write
from nextloc.data.batching import batches
from nextloc.data.split import build_dataset
from nextloc.experiments.registry import train_config
from nextloc.models import build_model, count_parameters
from nextloc.preprocess.pipeline import PreprocessConfig, geolife_folder, run_pipeline
from nextloc.data.synthetic import synthetic_staypoints
from nextloc.training.loop import train
from nextloc.experiments.train_one import registry_settings

GEOLIFE_POINTS = 24.9e6  # GPS points of the full Geolife 1.3 release (Zheng et al. 2010)
# The raw sample covers about a week per user: the published thresholds would drop everyone.
RELAXED = {"min_days": 3, "quality_window": 0, "min_samples": 1, "previous_day": 1,
           "min_history": 2}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "torch": torch.__version__}


def _write(name: str, report: dict) -> Path:
    """Write the report, or refuse it whole: a non-finite number (a zero-length measurement
    divided by) is a failed measurement, never a result to commit."""
    path = paths.RESULTS_DIR / "benchmarks" / name
    try:
        text = json.dumps(report, indent=1, allow_nan=False) + "\n"
    except ValueError as err:
        raise ResultsError(f"the benchmark measured a non-finite number ({err}); {path} is "
                           f"unchanged.") from err
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def benchmark_preprocess_scaling(users_axis=(40, 130, 400), workers_axis=(1,),
                                 extra=((40, 2),)) -> dict:
    from nextloc.preprocess.scaling import scaling_runs

    report = {**scaling_runs(users_axis, workers_axis, extra), "machine": machine()}
    _write("preprocess_scaling.json", report)
    return report


def _copied_users(folder: Path, copies: int, into: Path) -> None:
    """Symbolic links to every user folder, ``copies`` times under new numeric user ids."""
    for copy in range(copies):
        for user in sorted(p for p in folder.iterdir() if p.is_dir()):
            (into / str(int(user.name) + 1000 * copy)).symlink_to(user.resolve())


def benchmark_preprocess(raw_dir: str | Path, copies=(1, 2, 4)) -> dict:
    # loading trackintel is not part of any run's time
    import nextloc.preprocess.tracks  # noqa: F401

    config = PreprocessConfig(**RELAXED)
    folder = geolife_folder(raw_dir)
    runs = []
    for count in copies:
        with tempfile.TemporaryDirectory() as scratch:
            _copied_users(folder, count, Path(scratch))
            cpu = time.process_time()
            result = run_pipeline(scratch, config, progress=False)
            cpu = time.process_time() - cpu
        runs.append({"copies": count, "gps_points": result.counts["gps_points"],
                     "staypoints": result.counts["staypoints"],
                     "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
                     "total_seconds": round(sum(result.seconds.values()), 3),
                     "cpu_seconds": round(cpu, 3), "peak_memory_mb": _peak_memory_mb()})
    points = np.array([run["gps_points"] for run in runs], dtype=float) / 1e6
    wall, cpu = (np.array([run[key] for run in runs]) for key in ("total_seconds", "cpu_seconds"))
    wall_fit, cpu_fit = _line(points, wall), _line(points, cpu)
    millions = GEOLIFE_POINTS / 1e6
    report = {"what": "nextloc preprocess on the raw Geolife sample and copies of its users",
              "raw": _shown(raw_dir), "options": asdict(config), "machine": machine(),
              "runs": runs, "seconds_per_million_points": wall_fit["per_million_points"],
              "cpu_seconds_per_million_points": cpu_fit["per_million_points"],
              "fit": {"wall": wall_fit, "cpu": cpu_fit},
              "memory_fit_mb": _line(points, np.array([run["peak_memory_mb"] for run in runs])),
              "projection": {"gps_points": GEOLIFE_POINTS,
                             "minutes": _minutes(wall_fit, millions),
                             "cpu_minutes": _minutes(cpu_fit, millions)}}
    memory = report["memory_fit_mb"]
    report["projection"]["memory_gb"] = round(
        (memory["fixed"] + memory["per_million_points"] * millions) / 1024, 1)
    _write("preprocess.json", report)
    return report


def _peak_memory_mb() -> float:
    """The process's largest resident size so far (runs go from small to large, so after each
    run it is that run's peak, or an earlier one's)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _line(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares seconds = fixed + per_million_points * millions of points; through the origin
    when every run had the same size (a line needs two sizes)."""
    per_unit, fixed = (np.polyfit(x, y, 1) if len(np.unique(x)) > 1
                       else (float(np.mean(y)) / float(x[0]), 0.0))
    return {"per_million_points": round(float(per_unit), 2), "fixed": round(float(fixed), 2)}


def _minutes(fit: dict, millions: float) -> float:
    return round((fit["fixed"] + fit["per_million_points"] * millions) / 60, 1)


def _shown(path: str | Path) -> str:
    """A path as the project sees it (relative to the folder above the project when inside)."""
    path = Path(path).resolve()
    base = paths.PROJECT_ROOT.parent.resolve()
    return str(Path("..") / path.relative_to(base)) if path.is_relative_to(base) else str(path)


def _time_models(data) -> dict:
    """CPU seconds (one thread): markov's whole run, and one training epoch of the headline
    pointer settings (forward, backward and update over every training batch; no evaluation)."""
    torch.set_num_threads(1)
    start = time.process_time()
    train(train_config({"model": "markov"}), data, progress=False)
    markov = time.process_time() - start
    config = train_config(registry_settings("pointer")[0])
    model = build_model(config.model, data.num_locations, data.num_users, over_budget_ok=True,
                        **config.model_options)
    model.label_smoothing = config.label_smoothing
    split = data.splits["train"]
    model.fit_statistics(split)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    model.train()
    start = time.process_time()
    for batch in batches(split, config.batch_size, shuffle=True, rng=np.random.default_rng(0)):
        loss = model.training_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    epoch = time.process_time() - start
    return {"markov_cpu_seconds": round(markov, 3), "pointer_params": count_parameters(model),
            "pointer_epoch_cpu_seconds": round(epoch, 3),
            "pointer_ms_per_training_sample": round(1000 * epoch / len(split), 3)}


def benchmark_training(users_axis=(20, 40, 80), locations_axis=(1000, 4000, 16000),
                       days: int = 60) -> dict:
    """Samples axis: more users, 1,000 places, 40 % of stays away from the user's favourites.
    Locations axis: 40 users, 90 % of stays spread over more and more places (the classes are
    the places seen in training, so they are bounded by the training stays)."""
    grid = ([(users, 1000, 0.4) for users in users_axis]
            + [(40, places, 0.9) for places in locations_axis])
    _time_models(build_dataset(synthetic_staypoints(5, 60, 100), np.arange(900)))  # warm-up
    rows = []
    for users, locations, elsewhere in grid:
        staypoints = synthetic_staypoints(users, days, locations, elsewhere=elsewhere)
        start = time.perf_counter()
        data = build_dataset(staypoints, staypoints["id"].to_numpy(), previous_day=7)
        row = {"users": users, "places": locations, "elsewhere": elsewhere,
               "staypoints": len(staypoints),
               "train_samples": len(data.splits["train"]),
               "samples": sum(len(s) for s in data.splits.values()),
               "classes": data.num_locations,
               "build_seconds": round(time.perf_counter() - start, 3)}
        rows.append({**row, **_time_models(data)})
    report = {"what": "cost against samples (more users) and locations (more places), "
                      "synthetic data, 60 days per user, 3 stays a day, previous_day 7; "
                      "'elsewhere': the share of stays spread uniformly over the places",
              "pointer_epoch": "CPU seconds of one training epoch of the headline pointer "
                               "settings (forward, backward, update; no evaluation), one thread",
              "markov": "CPU seconds of fit + validation + test evaluation, one thread",
              "machine": machine(), "rows": rows}
    _write("training_scaling.json", report)
    return report
