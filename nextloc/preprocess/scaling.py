"""How ``nextloc preprocess`` scales with the number of users: generated Geolife-like tracks
(:mod:`nextloc.preprocess.synthetic_tracks`) of several sizes, each preprocessed by a fresh
``nextloc preprocess`` process. Its peak memory is that of the largest process of the run (for a
pool, the max over the workers and the parent), from each process's high-water mark read while
it runs (Linux ``/proc``). The seconds are the pipeline's own (from its ``preprocess.json``),
without the start of Python; ``process_seconds`` are the whole command's."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from nextloc.core.errors import DataError
from nextloc.preprocess.config import PreprocessConfig
from nextloc.preprocess.synthetic_tracks import write_tracks

# Ten days per user: the relaxed options of the raw sample (no 50-day filter, a location from one
# staypoint, one day of history) then give every user targets in train, validation and test.
RELAXED = {"min_days": 3, "quality_window": 0, "min_samples": 1, "previous_day": 1,
           "min_history": 2}


def measure_run(raw: Path, workers: int, options: dict) -> dict:
    """One ``nextloc preprocess`` of ``raw`` in a new process: seconds, peak memory, counts."""
    with tempfile.TemporaryDirectory(prefix="nextloc-scaling-") as scratch:
        out = Path(scratch) / "data"
        flags = [item for name, value in options.items()
                 for item in (f"--{name.replace('_', '-')}", str(value))]
        command = [sys.executable, "-m", "nextloc", "preprocess", str(raw), "--out", str(out),
                   "--quiet", "--workers", str(workers), *flags]
        start = time.perf_counter()
        with open(Path(scratch) / "stderr", "w+b") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            peak_kib = _peak_of_tree(process)
            seconds = time.perf_counter() - start
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip().splitlines()
        if process.returncode != 0:
            raise DataError(f"nextloc preprocess of {raw} failed: "
                            f"{(message or ['no message'])[-1]}")
        report = json.loads((out / "preprocess.json").read_text())
    counts = report["counts"]
    return {"gps_points": counts["gps_points"], "workers": workers,
            "seconds": round(sum(report["seconds"].values()), 2),
            "peak_memory_mb": round(peak_kib / 1024, 1),
            "process_seconds": round(seconds, 2), "step_seconds": report["seconds"],
            "staypoints": counts["staypoints"], "final_staypoints": counts["final_staypoints"],
            "shards": -(-counts["source_users"] // options.get("shard_users", 4))}


def _peak_of_tree(process: subprocess.Popen, every_s: float = 0.2) -> int:
    """The largest peak resident size (KiB) of ``process`` and of every process it starts,
    until it ends. Each process's own high-water mark (``VmHWM``, reset when a program starts,
    unlike the ``ru_maxrss`` of a child, which keeps its parent's size at the fork) is read while
    it runs; it only grows, so sampling misses at most the growth of a process's last moments."""
    import psutil

    root, peaks = psutil.Process(process.pid), {}
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for member in tree:
            try:
                status = Path(f"/proc/{member.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[member.pid] = max(peaks.get(member.pid, 0), int(line.split()[1]))
        time.sleep(every_s)
    return max(peaks.values(), default=0)


def scaling_runs(users_axis=(40, 130, 400), workers_axis=(1,), extra=((40, 2),),
                 days: int = 10, shard_users: int = 4) -> dict:
    """A run per size in ``users_axis`` and per worker count in ``workers_axis``, plus the
    (users, workers) pairs of ``extra``."""
    options = {**RELAXED, "shard_users": shard_users}
    plan = [(users, workers) for users in users_axis for workers in workers_axis]
    plan += [pair for pair in extra if pair not in plan]
    runs = []
    with tempfile.TemporaryDirectory(prefix="nextloc-tracks-") as scratch:
        for users in sorted(set(users for users, _ in plan)):
            raw = Path(scratch) / f"users_{users}"
            write_tracks(raw, users, days=days)
            runs += [{"users": users, **measure_run(raw, workers, options)}
                     for size, workers in plan if size == users]
    return {"what": "nextloc preprocess on generated Geolife-like tracks "
                    "(nextloc.preprocess.synthetic_tracks), one fresh process per run",
            "days_per_user": days,
            "options": {**asdict(PreprocessConfig(**options))}, "runs": runs}
