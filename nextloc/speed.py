"""``nextloc benchmark speed``: training and inference speed of the report's models on one CPU
thread, this code against a reference commit, in one invocation, into
``results/benchmarks/training.json``.

Each implementation runs in its own process (the reference from a temporary git worktree), the
two alternating, so that both see the same machine. A measurement trains a fixed number of
batches (after a few untimed ones) and evaluates the validation split once, twice over, and
keeps the faster of each. An epoch is ``steps per epoch x seconds per batch + one validation
pass``, a run is an epoch times the epochs a run takes: the median best epoch recorded in
``results/metrics.csv`` plus the patience of early stopping (capped at ``epochs``). Inference
is the validation pass per 1,000 samples (forward and ranking). Wall time is noisy on a shared
machine, so the process CPU time is recorded beside it. The speed-up compares the fastest
measurement of each tree over all rounds; the speed-up within each round (the two trees
measured one after the other) is recorded beside it, and its spread shows how much the
machine drifted during the benchmark.

Run as a script (``python nextloc/speed.py --measure ...``) it measures whichever
``nextloc`` comes first on ``PYTHONPATH``, through functions both trees have.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENTS = ["baseline", "pointer", "pointer_pair"]  # and the headline: default_experiments
# main just before the speed-up of the pointer model: "today's code" in the file.
REFERENCE_COMMIT = "f8999ad46a384af2cd738608863e63e6435147e6"
WARMUP_STEPS = 5


def default_experiments() -> list[str]:
    from nextloc.experiments.registry import headline_experiments

    return list(dict.fromkeys(EXPERIMENTS + headline_experiments()[:1]))


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def measure(experiment: str, steps: int, repeats: int) -> dict:
    """Seconds per training batch and per validation pass of one experiment (this process's
    nextloc), the best of ``repeats``, wall and CPU."""
    import dataclasses

    import torch

    from nextloc.data.split import load_dataset
    from nextloc.core.device import set_seed
    from nextloc.experiments.registry import run_settings, train_config
    from nextloc.training.loop import evaluate, fit, prepare

    torch.set_num_threads(1)
    # run_settings fills the checkpoint placeholders (a distilled model reads its teacher's).
    config = train_config(run_settings(experiment, 42, False), seed=42, num_threads=1)
    data, device = load_dataset(), torch.device("cpu")
    set_seed(42)
    model, split = prepare(config, data, device)
    timed = dataclasses.replace(config, refit=True, epochs=1, max_batches=steps)
    fit(model, dataclasses.replace(timed, max_batches=WARMUP_STEPS), split, None, device, False)
    step, validation = [math.inf, math.inf], [math.inf, math.inf]
    for _ in range(repeats):
        start = clocks()
        fit(model, timed, split, None, device, False)
        step = [min(a, b / steps) for a, b in zip(step, since(start))]
        start = clocks()
        evaluate(model, data.splits["validation"], device)
        validation = [min(a, b) for a, b in zip(validation, since(start))]
    return {"step": step, "validation": validation, "batch_size": config.batch_size,
            "train_samples": len(split), "validation_samples": len(data.splits["validation"])}


def run_length(experiment: str) -> dict:
    """Epochs of a full run: the median recorded best epoch plus the patience, capped."""
    from nextloc.experiments.registry import experiment_settings, train_config
    from nextloc.experiments.results import read_metrics

    config = train_config(experiment_settings(experiment))
    rows = read_metrics()
    best = rows.loc[rows["experiment"] == experiment, "best_epoch"].median()
    return {"median_best_epoch": float(best),
            "epochs_per_run": int(min(best + config.patience, config.epochs))}


def summarize(raw: dict, length: dict) -> dict:
    steps = math.ceil(raw["train_samples"] / raw["batch_size"])
    out = {"steps_per_epoch": steps}
    for clock, index in (("wall", 0), ("cpu", 1)):
        epoch = steps * raw["step"][index] + raw["validation"][index]
        out[clock] = {"train_batch_ms": round(1000 * raw["step"][index], 2),
                      "validation_seconds": round(raw["validation"][index], 3),
                      "epoch_seconds": round(epoch, 2),
                      "run_seconds": round(epoch * length["epochs_per_run"], 1),
                      "inference_ms_per_1000": round(
                          1e6 * raw["validation"][index] / raw["validation_samples"], 1)}
    return out


def measure_tree(tree: Path, experiments: list[str], steps: int, repeats: int,
                 cache: Path) -> dict:
    """Run :func:`measure` in a fresh process on the nextloc of ``tree``."""
    from nextloc.data.split import default_data_dir

    env = {**os.environ, "PYTHONPATH": str(tree), "NEXTLOC_DATA": str(default_data_dir()),
           "NEXTLOC_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--steps",
               str(steps), "--repeats", str(repeats), *experiments]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        from nextloc.core.errors import RunError

        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RunError(f"benchmark of {tree} failed: {last[:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(measurements: list[dict]) -> dict:
    """Per experiment, the fastest step and validation pass over the measurements (wall and
    CPU separately)."""
    def fastest(name: str, part: str) -> list[float]:
        return [min(m[name][part][i] for m in measurements) for i in (0, 1)]
    return {name: {**measurements[0][name], "step": fastest(name, "step"),
                   "validation": fastest(name, "validation")} for name in measurements[0]}


def speedup(reference: dict | None, current: dict) -> dict | None:
    if reference is None:
        return None
    return {clock: round(reference[clock]["run_seconds"] / current[clock]["run_seconds"], 2)
            for clock in ("wall", "cpu")}


def git(*args: str) -> str:
    from nextloc.core import paths

    done = subprocess.run(["git", "-C", str(paths.PROJECT_ROOT), *args], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:  # not a clone, or the reference commit missing (a shallow clone)
        from nextloc.core.errors import RunError

        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RunError(f"benchmark speed: `git {' '.join(args)}` failed: {last[:200]}")
    return done.stdout.strip()


def machine() -> dict:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "logical_cpus": os.cpu_count(), "threads": 1,
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def run_benchmark(experiments: list[str], steps: int = 40, repeats: int = 2, rounds: int = 4,
                  reference: str = REFERENCE_COMMIT) -> dict:
    """Measure the reference and this tree, alternating ``rounds`` times; the report."""
    from nextloc.core import paths

    started, info = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine()
    with tempfile.TemporaryDirectory(prefix="nextloc-benchmark-") as scratch:
        tree = Path(scratch) / "reference"
        git("worktree", "add", "--detach", str(tree), reference)
        try:
            runs = {"reference": [], "current": []}
            for _ in range(rounds):
                for name, root in (("reference", tree), ("current", paths.PROJECT_ROOT)):
                    runs[name].append(measure_tree(root, experiments, steps, repeats,
                                                   Path(scratch) / f"cache-{name}"))
        finally:
            git("worktree", "remove", "--force", str(tree))
    return report(experiments, runs, reference, started, info,
                  {"train_batches": steps, "repeats": repeats, "rounds": rounds})


def round_speedups(name: str, runs: dict, length: dict) -> list[float]:
    """The CPU speed-up of a run in each round: the two trees measured one after the other see
    nearly the same machine, so the spread of these ratios shows how much the machine drifted."""
    return [speedup(summarize(reference[name], length), summarize(current[name], length))["cpu"]
            for reference, current in zip(runs["reference"], runs["current"])
            if name in reference]


def report(experiments: list[str], runs: dict, reference: str, started: str, info: dict,
           protocol: dict) -> dict:
    best = {k: best_of(v) for k, v in runs.items()}
    out = {"measured": started, "machine": info, "protocol": {**protocol, "method": __doc__},
           "reference": {"commit": reference},
           "current": {"commit": git("rev-parse", "HEAD"),
                       "uncommitted_changes": bool(git("status", "--porcelain"))},
           "experiments": {}}
    for name in experiments:
        length = run_length(name)
        reference = best["reference"].get(name)  # None: the reference commit lacks it
        entry = {**length, "reference": reference and summarize(reference, length),
                 "current": summarize(best["current"][name], length)}
        entry["speedup_per_run"] = speedup(entry["reference"], entry["current"])
        entry["speedup_per_round"] = {"cpu": round_speedups(name, runs, length)}
        out["experiments"][name] = entry
    return out


def check_can_measure(experiments: list[str]) -> None:
    """Every experiment resolves, has the checkpoints it loads (a teacher: git-ignored, so absent
    from a fresh clone) and recorded runs to take its length from; checked before minutes of
    measuring, which once ended in a traceback from the measuring process."""
    from nextloc.core.errors import ConfigError
    from nextloc.experiments.preflight import check_checkpoints_to_read
    from nextloc.experiments.registry import run_settings, train_config
    from nextloc.experiments.results import read_metrics

    recorded = set(read_metrics()["experiment"])
    for name in experiments:
        config = train_config(run_settings(name, 42, False, resolve_epochs=False), seed=42)
        check_checkpoints_to_read(name, config.model_options, [], quick=False)
        if name not in recorded:
            raise ConfigError(f"benchmark speed: '{name}' has no runs in results/metrics.csv; "
                              f"its run length comes from their best epochs.")


def write_benchmark(**options) -> Path:
    from nextloc.core import paths
    from nextloc.core.paths import atomic_write

    from nextloc.core.errors import ConfigError, ResultsError

    for name in ("steps", "repeats"):
        value = options.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"benchmark speed: {name} must be an integer >= 1, got {value!r}")
    check_can_measure(options.get("experiments") or [])
    result = run_benchmark(**options)
    path = paths.RESULTS_DIR / "benchmarks" / "training.json"
    try:  # a non-finite time is a failed measurement, never a result to commit
        text = json.dumps(result, indent=1, allow_nan=False) + "\n"
    except ValueError as err:
        raise ResultsError(f"benchmark speed measured a non-finite time ({err}); "
                           f"{path} is unchanged.") from err
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiments", nargs="*")
    parser.add_argument("--steps", type=int, default=40, choices=range(1, 100_001),
                        metavar="N")
    parser.add_argument("--repeats", type=int, default=2, choices=range(1, 1001), metavar="N")
    parser.add_argument("--measure", action="store_true", help="measure this process's nextloc")
    args = parser.parse_args(argv)
    if args.measure:
        from nextloc.experiments.registry import load_registry

        known = load_registry()["experiments"]  # the reference may predate an experiment
        print(json.dumps({name: measure(name, args.steps, args.repeats)
                          for name in args.experiments if name in known}))
    else:
        print(write_benchmark(experiments=args.experiments or default_experiments(),
                              steps=args.steps,
                              repeats=args.repeats))


if __name__ == "__main__":
    main()
