"""Raw GPS tracks -> a dataset folder, on trackintel (Martin et al. 2023).

The steps follow the published preprocessing of Hong et al. (2023) that made the shared Geolife
files: sliding-window staypoints, an activity flag, a user tracking-quality filter, locations by
DBSCAN over the whole dataset, consecutive stays at one location merged, the time columns, and
the valid-id rule. The per-user steps (reading, staypoints, activity flag, quality) run on
shards of users (:mod:`nextloc.preprocess.shards`) on a local pool or a Dask cluster
(:mod:`nextloc.preprocess.workers`); the clustering into locations is one step over the
staypoints of every user, and merging runs a shard at a time again. Every threshold is an
option of :class:`PreprocessConfig` (CLI flags of ``nextloc preprocess`` or a YAML file). What
it writes is described in the README ("Your own data"): ``staypoints.csv``, ``valid_ids.csv``,
``locations.csv``, ``users.csv`` and ``preprocess.json`` (the options, the counts after every
step and the seconds each took).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from nextloc.preprocess import steps
from nextloc.preprocess.shards import Scratch, plan_shards, quiet_warnings, run_shards
from nextloc.core.errors import DataError
from nextloc.preprocess.config import PreprocessConfig, load_config  # noqa: F401 (re-exported)


def geolife_folder(raw_dir: str | Path) -> Path:
    """The folder of Geolife user folders (``<user>/Trajectory/*.plt``), or its parent."""
    raw = Path(raw_dir)
    for folder in (raw, raw / "Data"):
        if any(folder.glob("*/Trajectory/*.plt")):
            return folder
    raise DataError(f"{raw}: no Geolife tracks found; expected {raw}/<user>/Trajectory/*.plt "
                    f"(the layout of the Geolife release's Data folder).")


@dataclass
class Preprocessed:
    raw: Path                       # the folder of user folders; tracks.read_geolife reads them
    all_staypoints: "pd.DataFrame"  # every staypoint generated, with is_activity
    users: pd.DataFrame             # per source user: tracked_days, quality, kept, user_id
    staypoints: pd.DataFrame        # the final table (staypoints.csv)
    locations: pd.DataFrame         # id, lon, lat, extent (WKT), staypoints
    counts: dict
    seconds: dict


class _Clock:
    """Seconds per named step, with a progress bar over the steps."""

    def __init__(self, names: list[str], progress: bool):
        self.seconds: dict[str, float] = {}
        self.bar = tqdm(total=len(names), desc="preprocess", disable=not progress, unit="step")

    def step(self, name: str, run, *args, **kwargs):
        self.bar.set_postfix_str(name)
        start = time.perf_counter()
        with quiet_warnings():
            result = run(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        self.bar.update(1)
        return result


STEP_NAMES = ["shards", "locations", "merge", "table"]


def run_pipeline(raw_dir: str | Path, config: PreprocessConfig | None = None,
                 progress: bool = True, pool=None, scratch: str | Path | None = None
                 ) -> Preprocessed:
    """Every step; :func:`write_dataset` writes the result. The per-user steps run on shards of
    users on ``pool`` (default: this process; see :mod:`nextloc.preprocess.workers`), each
    finished shard saved in the folder ``scratch`` (default: a temporary folder)."""
    from nextloc.preprocess import tracks
    from nextloc.preprocess.workers import LocalPool

    config = config or PreprocessConfig()
    folder = geolife_folder(raw_dir)
    clock = _Clock(STEP_NAMES, progress)
    shards = plan_shards(folder, tracks.list_users(folder), config)
    with _scratch_folder(scratch) as where:
        results = clock.step("shards", run_shards, folder, shards, config, Scratch(where),
                             pool or LocalPool(1), progress)
    all_sp, users, counts = _gathered(folder, results, config)
    kept = all_sp[all_sp["user_id"].isin(users.loc[users["kept"], "source_user"])
                  & all_sp["is_activity"]]
    if kept.empty:
        raise DataError(_nobody_left(users, config))
    sp, locations = clock.step("locations", tracks.locations, kept, config, progress)
    merged = clock.step("merge", _merged_by_shard, sp, shards, config)
    table, users = clock.step("table", _final_table, merged, users, config)
    clock.bar.close()
    locations = locations[locations["id"].isin(table["location_id"])].reset_index(drop=True)
    counts.update({"source_users": len(users), "staypoints": len(all_sp),
                   "activity_staypoints": int(all_sp["is_activity"].sum()),
                   "users_passing_quality": int(users["kept"].sum()),
                   "staypoints_at_locations": len(sp), "staypoints_merged": len(merged),
                   "users": int(users["user_id"].notna().sum()), "final_staypoints": len(table),
                   "valid_ids": int(table["valid"].sum()), "locations": len(locations)})
    return Preprocessed(folder, all_sp, users, table, locations, counts, clock.seconds)


@contextmanager
def _scratch_folder(scratch: str | Path | None):
    if scratch is not None:
        yield Path(scratch)
        return
    with tempfile.TemporaryDirectory(prefix="nextloc-shards-") as temporary:
        yield Path(temporary)


def _gathered(folder: Path, results: list[dict], config: PreprocessConfig):
    """The shards' staypoints and users as one table each, and the counts of the fixes; no fix
    or no staypoint in any shard is one clear error."""
    from nextloc.preprocess import tracks

    fixes = {key: sum(result["counts"][key] for result in results)
             for key in ("gps_points", "unreadable", "outside_range", "duplicate_points_dropped")}
    problem = tracks.no_fixes_left(folder, fixes)
    if problem:
        raise DataError(problem)
    table = pd.concat([result["staypoints"] for result in results], ignore_index=True)
    if table.empty:
        raise DataError(f"no staypoint found (no {config.time_threshold:g} min within "
                        f"{config.dist_threshold:g} m); check the tracks or the thresholds.")
    users = pd.concat([result["users"] for result in results], ignore_index=True)
    users["kept"] = (users["tracked_days"] >= config.min_days) & users["quality"].notna()
    counts = {"gps_points": fixes["gps_points"], "unreadable_points_dropped": fixes["unreadable"],
              "out_of_range_points_dropped": fixes["outside_range"],
              "duplicate_points_dropped": fixes["duplicate_points_dropped"]}
    return tracks.as_staypoints(table), users, counts


def _merged_by_shard(sp, shards: list, config: PreprocessConfig) -> pd.DataFrame:
    """Consecutive stays at one location merged, a shard of users at a time (it needs the
    locations, so it runs after the clustering of every user's staypoints)."""
    from nextloc.preprocess import tracks

    user = sp["user_id"].to_numpy()
    parts = [sp[np.isin(user, [int(name) for name in shard.users])] for shard in shards]
    return pd.concat([tracks.merge(part, config) for part in parts if len(part)],
                     ignore_index=True)


def _nobody_left(users: pd.DataFrame, config: PreprocessConfig) -> str:
    longest = int(users["tracked_days"].max()) if len(users) else 0
    return (f"no user passes the tracking-quality filter (min_days={config.min_days:g}, "
            f"quality_window={config.quality_window} weeks; the longest-tracked user has "
            f"{longest} days). For short data lower --min-days and --quality-window (0 turns the "
            f"window off).")


def _final_table(merged: pd.DataFrame, users: pd.DataFrame,
                 config: PreprocessConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time columns, the valid-id rule, users with targets in every split renumbered 1..N."""
    table = steps.time_table(merged, config.timezone)
    valid = steps.valid_targets(table, config.previous_day, config.min_history)
    keep_users = steps.users_with_targets_in_every_split(table, valid)
    if len(keep_users) == 0:
        raise DataError(f"no user has a valid target in each of train, validation and test "
                        f"(previous_day={config.previous_day}, min_history="
                        f"{config.min_history}); short data needs smaller values.")
    number = {source: index + 1 for index, source in enumerate(sorted(keep_users))}
    rows = table["user_id"].isin(keep_users).to_numpy()
    table = table[rows].assign(valid=valid[rows], user_id=lambda t: t["user_id"].map(number))
    table.insert(0, "id", np.arange(len(table)))
    users = users.assign(user_id=users["source_user"].map(number).astype("Int64"))
    return table.reset_index(drop=True), users


OUTPUT_COLUMNS = ["id", "user_id", "location_id", "duration", "start_day", "end_day",
                  "start_min", "end_min", "weekday", "lon", "lat"]


OUTPUT_FILES = ["staypoints.csv", "valid_ids.csv", "locations.csv", "users.csv",
                "preprocess.json"]


def write_dataset(result: Preprocessed, out_dir: str | Path, config: PreprocessConfig,
                  raw_dir: str | Path) -> Path:
    """The dataset folder, all or nothing: every file is written into a temporary sibling folder
    which then takes the folder's place. A failure (a full disk) leaves the previous folder as it
    was, never new staypoints beside the previous run's locations and preprocess.json."""
    from importlib.metadata import version

    out = Path(out_dir)
    if (out / "dataSet_geolife.csv").exists():
        raise DataError(f"{out} holds Geolife files; write the output to another folder.")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder.")
    table = result.staypoints
    tables = {"staypoints.csv": table[OUTPUT_COLUMNS],
              "valid_ids.csv": table.loc[table["valid"], ["id"]],
              "locations.csv": result.locations, "users.csv": result.users}
    report = {"raw": str(raw_dir), "trackintel": version("trackintel"),
              "options": asdict(config), "counts": result.counts,
              "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
    staging = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial",
                                        dir=out.parent))
        for name, frame in tables.items():
            frame.to_csv(staging / name, index=False)
        (staging / "preprocess.json").write_text(json.dumps(report, indent=1))
        _swap_in(staging, out)
    except OSError as err:
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise DataError(f"{out}: cannot write the dataset ({err.strerror or err}{where}); "
                        f"the folder is unchanged.") from err
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished ``staging`` folder in place of ``out``. Files of ``out`` that preprocess
    does not write (a user's notes) follow into the new folder; the previous folder is deleted
    only once it holds nothing but a previous run's outputs."""
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a dataset folder is readable
    if not out.exists():
        os.replace(staging, out)
        return
    previous = out.with_name(staging.name.replace(".partial", ".previous"))
    os.replace(out, previous)
    os.replace(staging, out)
    for extra in previous.iterdir():
        if extra.name not in OUTPUT_FILES:
            os.replace(extra, out / extra.name)
    shutil.rmtree(previous)


def preprocess(raw_dir: str | Path, out_dir: str | Path, config: PreprocessConfig | None = None,
               progress: bool = True, workers: int | None = None,
               scheduler: str | None = None) -> Preprocessed:
    """``nextloc preprocess``: run every step and write the dataset folder. The per-user steps
    run on ``workers`` local processes (default: one per core), or on the Dask scheduler at
    ``scheduler`` (``"local"``: a LocalCluster of ``workers`` processes). Finished shards wait in
    a scratch folder beside the output until the dataset is written, so a rerun after a failure
    or Ctrl-C resumes from them."""
    from nextloc.preprocess.workers import make_pool

    config = config or PreprocessConfig()
    out = Path(out_dir)
    scratch = scratch_folder(out)
    result = run_pipeline(raw_dir, config, progress, make_pool(workers, scheduler), scratch)
    write_dataset(result, out, config, raw_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def scratch_folder(out: Path) -> Path:
    """Where the finished shards of a run writing ``out`` wait (beside its staging folder)."""
    return out.parent / f".{out.name}.shards"
