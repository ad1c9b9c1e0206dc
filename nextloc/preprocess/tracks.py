"""The trackintel steps of :mod:`nextloc.preprocess.pipeline` (trackintel: Martin et al. 2023), each
a thin call with the options of :class:`~nextloc.preprocess.pipeline.PreprocessConfig`. Imported
only when preprocessing, because trackintel and geopandas take a while to load."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import trackintel as ti
from tqdm import tqdm

from nextloc.preprocess import steps
from nextloc.core.errors import DataError
from nextloc.preprocess.shards import quiet_warnings


PLT_COLUMNS = ["latitude", "longitude", "zeros", "elevation", "days", "date", "time"]
FEET = 0.3048  # .plt altitudes are in feet


def read_geolife(folder: Path, progress: bool, users: list[str] | None = None
                 ) -> gpd.GeoDataFrame:
    """Every fix of the user folders ``users`` (default: all) as trackintel positionfixes,
    read as trackintel's ``read_geolife`` reads them, except that a damaged line is dropped and
    counted, not fatal: a fix whose date, time, latitude or longitude cannot be read in
    ``attrs["unreadable"]``, one off the globe in ``attrs["outside_range"]``. No fix left at all
    is one clear error."""
    users = list_users(folder) if users is None else users
    positionfixes, counts = read_fixes(folder, users, progress)
    problem = no_fixes_left(folder, counts)
    if problem:
        raise DataError(problem)
    return positionfixes


def list_users(folder: Path) -> list[str]:
    """The user folders, in the order of their numbers (the order of the shards)."""
    users = [user for user in os.listdir(folder) if (folder / user).is_dir()]
    if not all(user.isdigit() for user in users):
        raise DataError(f"{folder}: every folder in it must be a user, named by a number; got "
                        f"{sorted(u for u in users if not u.isdigit())[:3]}.")
    return sorted(users, key=lambda user: (int(user), user))


def read_fixes(folder: Path, users: list[str], progress: bool = False
               ) -> tuple[gpd.GeoDataFrame | None, dict]:
    """The readable fixes on the globe of ``users`` (None when there is none), and the counts
    ``gps_points, unreadable, outside_range`` of the lines read."""
    frames = [_read_plt(Path(path), int(user))
              for user in tqdm(users, disable=not progress)
              for path in glob.glob(str(folder / user / "Trajectory" / "*.plt"))]
    fixes = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    counts = {"gps_points": len(fixes), "unreadable": 0, "outside_range": 0}
    if fixes.empty:
        return None, counts
    readable = fixes[["tracked_at", "latitude", "longitude"]].notna().all(axis=1)
    counts["unreadable"] = int((~readable).sum())
    fixes = fixes[readable].reset_index(drop=True)
    if fixes.empty:
        return None, counts
    positionfixes = ti.Positionfixes(pd.DataFrame({
        "elevation": fixes["elevation"] * FEET, "tracked_at": fixes["tracked_at"],
        "geom": gpd.points_from_xy(fixes["longitude"], fixes["latitude"]),
        "user_id": fixes["user_id"], "accuracy": np.nan}), geometry="geom", crs=4326)
    positionfixes.index.name = "id"
    lon, lat = positionfixes.geometry.x, positionfixes.geometry.y
    inside = ((lat.abs() <= 90) & (lon.abs() <= 180)).to_numpy()
    counts["outside_range"] = int((~inside).sum())
    kept = positionfixes[inside]
    kept.attrs.update(counts)
    return (kept if len(kept) else None), counts


def no_fixes_left(folder: Path, counts: dict) -> str | None:
    """Why no fix is left to work on, from the counts of :func:`read_fixes`; None when some is."""
    total, unreadable = counts["gps_points"], counts["unreadable"]
    if total == 0:
        return f"{folder}: the .plt files hold no GPS fixes."
    if unreadable == total:
        return (f"{folder}: none of the {total:,} GPS fixes has a readable date, time, latitude "
                f"and longitude; a .plt line is lat,lon,0,altitude,days,date (YYYY-MM-DD),time "
                f"(HH:MM:SS).")
    if unreadable + counts["outside_range"] == total:
        return (f"{folder}: none of the {total - unreadable:,} GPS fixes has a latitude in "
                f"-90..90 and a longitude in -180..180; a .plt line is lat,lon,0,altitude,days,"
                f"date,time.")
    return None


def _read_plt(path: Path, user: int) -> pd.DataFrame:
    """One .plt file: a fix per line after 6 header lines; what cannot be read is NaN/NaT."""
    try:
        data = pd.read_csv(path, skiprows=6, header=None, names=PLT_COLUMNS, dtype=str,
                           usecols=["latitude", "longitude", "elevation", "date", "time"])
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read it as a Geolife .plt file "
                        f"({str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"
                        f"; it needs 6 header lines, then lat,lon,0,altitude,days,date,time."
                        ) from err
    number = lambda column: pd.to_numeric(data[column], errors="coerce")  # noqa: E731
    return pd.DataFrame({
        "latitude": number("latitude"), "longitude": number("longitude"),
        "elevation": number("elevation"),
        "tracked_at": pd.to_datetime(data["date"] + " " + data["time"],
                                     format="%Y-%m-%d %H:%M:%S", utc=True, errors="coerce"),
        "user_id": user})


def quiet_shard_staypoints(folder: Path, users: list[str], config) -> dict:
    with quiet_warnings():
        return shard_staypoints(folder, users, config)


def shard_staypoints(folder: Path, users: list[str], config) -> dict:
    """The per-user steps for the users of one shard: their fixes read, sliding-window
    staypoints with the activity flag, and each user's tracked days and tracking quality.
    Returns plain tables (sent back from a worker process or a Dask worker): ``staypoints``
    (``user_id, started_at, finished_at`` in microseconds since 1970 UTC, ``lon, lat, elevation,
    is_activity``), ``users`` (``source_user, tracked_days, quality``) and ``counts``."""
    positionfixes, counts = read_fixes(folder, users)
    counts = {**counts, "points_read": 0, "duplicate_points_dropped": 0}
    if positionfixes is None:
        return {"staypoints": STAYPOINT_COLUMNS.copy(), "users": QUALITY_COLUMNS.copy(),
                "counts": counts}
    counts["points_read"] = len(positionfixes)
    positionfixes, sp = staypoints(positionfixes, config, progress=False)
    counts["duplicate_points_dropped"] = counts["points_read"] - len(positionfixes)
    users_table = quality(positionfixes, sp, config)
    times = {column: sp[column].astype("datetime64[us, UTC]").astype("int64").to_numpy()
             for column in ("started_at", "finished_at")}
    table = pd.DataFrame({"user_id": sp["user_id"].to_numpy(np.int64), **times,
                          "lon": sp.geometry.x.to_numpy(), "lat": sp.geometry.y.to_numpy(),
                          "elevation": sp["elevation"].to_numpy(np.float64),
                          "is_activity": sp["is_activity"].to_numpy(bool)})
    return {"staypoints": table, "users": users_table[list(QUALITY_COLUMNS)],
            "counts": counts}


STAYPOINT_COLUMNS = pd.DataFrame({
    "user_id": pd.Series(dtype="int64"), "started_at": pd.Series(dtype="int64"),
    "finished_at": pd.Series(dtype="int64"), "lon": pd.Series(dtype="float64"),
    "lat": pd.Series(dtype="float64"), "elevation": pd.Series(dtype="float64"),
    "is_activity": pd.Series(dtype="bool")})
QUALITY_COLUMNS = pd.DataFrame({"source_user": pd.Series(dtype="int64"),
                                "tracked_days": pd.Series(dtype="int64"),
                                "quality": pd.Series(dtype="float64")})


def as_staypoints(table: pd.DataFrame) -> gpd.GeoDataFrame:
    """The staypoints of :func:`shard_staypoints` as trackintel staypoints, numbered 0..N-1."""
    frame = pd.DataFrame({
        "user_id": table["user_id"].to_numpy(np.int64),
        "started_at": pd.to_datetime(table["started_at"], unit="us", utc=True),
        "finished_at": pd.to_datetime(table["finished_at"], unit="us", utc=True),
        "elevation": table["elevation"].to_numpy(np.float64),
        "geom": gpd.points_from_xy(table["lon"], table["lat"]),
        "is_activity": table["is_activity"].to_numpy(bool)})
    frame.index = pd.RangeIndex(len(frame), name="id")
    return ti.Staypoints(frame, geometry="geom", crs=4326)


def staypoints(positionfixes, config, progress: bool):
    """Sliding-window staypoints and the activity flag (none found is an empty table)."""
    positionfixes, sp = positionfixes.generate_staypoints(
        method="sliding", dist_threshold=config.dist_threshold,
        time_threshold=config.time_threshold, gap_threshold=config.gap_threshold,
        include_last=True, print_progress=progress, n_jobs=config.n_jobs)
    if sp.empty:
        return positionfixes, sp.assign(is_activity=pd.Series(dtype=bool))
    sp = sp.create_activity_flag(method="time_threshold", time_threshold=config.activity_time)
    return positionfixes, sp


def quality(positionfixes, sp, config) -> pd.DataFrame:
    """Per user: tracked days and the share of time covered by staypoints and triplegs. The
    users' ``kept`` flag, which depends on ``min_days``, is set once all shards are in."""
    if positionfixes["staypoint_id"].notna().all():  # no move at all: trackintel's
        triplegs = sp.iloc[:0]                         # generate_triplegs raises IndexError
    else:  # a shard without staypoints: trackintel rejects an empty staypoint table
        _, triplegs = positionfixes.generate_triplegs(sp if len(sp) else None)
    columns = ["user_id", "started_at", "finished_at"]
    records = pd.concat([pd.DataFrame(table[columns]) for table in (sp, triplegs) if len(table)])
    return steps.user_quality(records, 0, config.quality_window)


def locations(sp, config, progress: bool) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """DBSCAN over the staypoints of every user together; staypoints in no location (noise)
    are dropped. Returns (staypoints with location_id, locations table)."""
    sp, locs = sp.generate_locations(
        method="dbscan", epsilon=config.epsilon, num_samples=config.min_samples,
        distance_metric="haversine", agg_level="dataset", print_progress=progress,
        n_jobs=config.n_jobs)
    sp = sp[sp["location_id"].notna()].copy()
    if sp.empty:
        raise DataError(f"no location has {config.min_samples} staypoints within "
                        f"{config.epsilon:g} m; lower --min-samples or raise --epsilon.")
    sp["location_id"] = sp["location_id"].astype("int64")
    locs = locs[~locs.index.duplicated(keep="first")]  # one row per (user, location) before
    size = sp["location_id"].value_counts()
    table = pd.DataFrame({"id": locs.index.to_numpy(), "lon": locs.geometry.x.to_numpy(),
                          "lat": locs.geometry.y.to_numpy(),
                          "extent": locs["extent"].to_wkt().to_numpy(),
                          "staypoints": size.reindex(locs.index).fillna(0).astype(int).to_numpy()})
    return sp, table


def merge(sp, config) -> pd.DataFrame:
    """Consecutive staypoints of a user at one location, at most ``merge_gap`` minutes apart,
    become one (the first's start and place, the last's end)."""
    geometry = sp.geometry.name
    merged = sp[["user_id", "started_at", "finished_at", "location_id", geometry]].merge_staypoints(
        triplegs=pd.DataFrame([]), max_time_gap=pd.Timedelta(minutes=config.merge_gap),
        agg={"location_id": "first", geometry: "first"})
    merged = merged.reset_index(drop=True)
    points = gpd.GeoSeries(merged[geometry], crs=sp.crs)
    return pd.DataFrame({"user_id": merged["user_id"].astype("int64"),
                         "started_at": pd.to_datetime(merged["started_at"], utc=True),
                         "finished_at": pd.to_datetime(merged["finished_at"], utc=True),
                         "location_id": merged["location_id"].astype("int64"),
                         "lon": points.x, "lat": points.y})
