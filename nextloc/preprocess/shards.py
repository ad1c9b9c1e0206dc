"""The per-user steps of ``nextloc preprocess`` on shards of users: reading the ``.plt`` files,
staypoints, the activity flag and the tracking quality need one user's fixes at a time, so they
run on groups of ``shard_users`` users, in worker processes (:mod:`nextloc.preprocess.workers`),
and memory is bounded by the largest shard instead of the dataset.

Each finished shard is written to a scratch folder beside the output (``.<out>.shards``) as
plain CSV files, named by a hash of the per-user options and the shard's users and files. A
rerun after a failure or Ctrl-C skips the shards already there; the folder is deleted once the
dataset is written. The shards are always read back from these files in the order of the users,
so the result is the same for any number of workers, resumed or not.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nextloc.core.errors import DataError, NextlocError, os_error_text, shorten

SCRATCH_FORMAT = 1  # bump when the files of a shard change: old scratch folders are ignored
PER_USER_OPTIONS = ("dist_threshold", "time_threshold", "gap_threshold", "activity_time",
                    "quality_window")
TABLES = ("staypoints", "users")


@dataclass
class Shard:
    number: int        # 0-based position in the order of the users
    users: list[str]   # user folder names
    key: str           # file name stem in the scratch folder

    def name(self, total: int) -> str:
        shown = ", ".join(self.users[:4]) + (", ..." if len(self.users) > 4 else "")
        return f"shard {self.number + 1} of {total} (users {shown})"


def plan_shards(folder: Path, users: list[str], config) -> list[Shard]:
    """Consecutive groups of ``config.shard_users`` users. The key covers what a shard's result
    depends on: the per-user options, the users and the size and time of each of their files."""
    options = {name: value for name, value in asdict(config).items() if name in PER_USER_OPTIONS}
    size = config.shard_users
    shards = []
    for number, first in enumerate(range(0, len(users), size)):
        group = users[first:first + size]
        files = sorted((str(path.relative_to(folder)), path.stat().st_size, path.stat().st_mtime_ns)
                       for user in group for path in (folder / user / "Trajectory").glob("*.plt"))
        stamp = json.dumps([SCRATCH_FORMAT, str(folder.resolve()), options, group, files])
        shards.append(Shard(number, group, hashlib.sha256(stamp.encode()).hexdigest()[:24]))
    return shards


class Scratch:
    """The finished shards of one output folder, one ``<key>.<table>.csv`` per table and a
    ``<key>.json`` of counts, written last: a shard counts as finished when its json is there."""

    def __init__(self, folder: Path):
        self.folder = folder

    def finished(self, shard: Shard) -> bool:
        return (self.folder / f"{shard.key}.json").is_file()

    def save(self, shard: Shard, result: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            _atomic(self.folder / f"{shard.key}.{table}.csv",
                    lambda tmp, frame=result[table]: frame.to_csv(tmp, index=False))
        text = json.dumps({"users": shard.users, "counts": result["counts"]})
        _atomic(self.folder / f"{shard.key}.json", lambda tmp: tmp.write_text(text))

    def load(self, shard: Shard) -> dict:
        try:
            counts = json.loads((self.folder / f"{shard.key}.json").read_text())["counts"]
            # round_trip: a float read back is the float written, bit for bit
            tables = {table: pd.read_csv(self.folder / f"{shard.key}.{table}.csv",
                                         float_precision="round_trip") for table in TABLES}
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{self.folder}: the saved shard {shard.key} cannot be read "
                            f"({shorten(err, 120)}); delete the folder to start over.") from err
        return {**tables, "counts": counts}


def _atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def run_shards(folder: Path, shards: list[Shard], config, scratch: Scratch, pool,
               progress: bool) -> list[dict]:
    """Every shard's result, in shard order: those in ``scratch`` read back, the others run on
    ``pool`` (a :class:`~nextloc.preprocess.workers.Pool`) and saved as each one finishes. A
    failing shard stops the run with one line naming its users; the shards finished before it
    stay in ``scratch``."""
    todo = [shard for shard in shards if not scratch.finished(shard)]
    bar = tqdm(total=len(shards), initial=len(shards) - len(todo), unit="shard",
               desc="per-user steps", disable=not progress)
    try:
        if todo:
            pool.run(folder, todo, config, lambda shard, result: (scratch.save(shard, result),
                                                                   bar.update(1)))
    except ShardFailed as failed:
        raise DataError(_failure_line(failed, len(shards), shards, scratch)) from failed.cause
    finally:
        bar.close()
    return [scratch.load(shard) for shard in shards]


class ShardFailed(Exception):
    """Raised by a pool when a shard's work failed; ``cause`` is what the worker raised."""

    def __init__(self, shard: Shard, cause: BaseException):
        super().__init__(shard.key)
        self.shard, self.cause = shard, cause


def _failure_line(failed: ShardFailed, total: int, shards: list[Shard], scratch: Scratch) -> str:
    cause = failed.cause
    if isinstance(cause, NextlocError):
        why = str(cause)
    elif isinstance(cause, OSError):
        why = os_error_text(cause)
    else:
        why = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    done = sum(scratch.finished(shard) for shard in shards)
    kept = (f"; {done} finished shard(s) kept in {scratch.folder}, a rerun resumes from them"
            if done else "")
    return f"{failed.shard.name(total)} failed: {shorten(why.rstrip('.'), 300)}{kept}."


@contextmanager
def quiet_warnings():
    """pandas deprecation notices raised inside trackintel, and its note on dropped duplicate
    fixes (counted in preprocess.json instead), kept off the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", ".*duplicates were dropped", UserWarning)
        yield
