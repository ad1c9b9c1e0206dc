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


PLT_COLUMNS = ["latitude", "longitude", "zeros", "elevation", "days", "date", "time"]
FEET = 0.3048  # .plt altitudes are in feet


def read_geolife(folder: Path, progress: bool) -> gpd.GeoDataFrame:
    """Every fix of every user folder (``<user>/Trajectory/*.plt``); users are the folder
    names as numbers. Read as trackintel's ``read_geolife`` reads them (same files, order and
    columns), except that a damaged line is dropped and counted, not fatal: a fix whose date,
    time, latitude or longitude cannot be read in ``attrs["unreadable"]``, one off the globe in
    ``attrs["outside_range"]``."""
    users = [user for user in os.listdir(folder) if (folder / user).is_dir()]
    if not all(user.isdigit() for user in users):
        raise DataError(f"{folder}: every folder in it must be a user, named by a number; got "
                        f"{sorted(u for u in users if not u.isdigit())[:3]}.")
    frames = [_read_plt(Path(path), int(user))
              for user in tqdm(users, disable=not progress)
              for path in glob.glob(str(folder / user / "Trajectory" / "*.plt"))]
    fixes = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if fixes.empty:
        raise DataError(f"{folder}: the .plt files hold no GPS fixes.")
    readable = fixes[["tracked_at", "latitude", "longitude"]].notna().all(axis=1)
    if not readable.any():
        raise DataError(f"{folder}: none of the {len(fixes):,} GPS fixes has a readable date, "
                        f"time, latitude and longitude; a .plt line is lat,lon,0,altitude,days,"
                        f"date (YYYY-MM-DD),time (HH:MM:SS).")
    fixes = fixes[readable].reset_index(drop=True)
    positionfixes = ti.Positionfixes(pd.DataFrame({
        "elevation": fixes["elevation"] * FEET, "tracked_at": fixes["tracked_at"],
        "geom": gpd.points_from_xy(fixes["longitude"], fixes["latitude"]),
        "user_id": fixes["user_id"], "accuracy": np.nan}), geometry="geom", crs=4326)
    positionfixes.index.name = "id"
    kept = inside_the_globe(folder, positionfixes)
    kept.attrs["unreadable"] = int((~readable).sum())
    return kept


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


def inside_the_globe(folder: Path, positionfixes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The fixes with |lat| <= 90 and |lon| <= 180; the others (a lat of 999 was accepted and
    wrapped round the globe) are dropped and counted in ``attrs["outside_range"]``."""
    lon, lat = positionfixes.geometry.x, positionfixes.geometry.y
    inside = (lat.abs() <= 90) & (lon.abs() <= 180)
    if not inside.any():
        raise DataError(f"{folder}: none of the {len(positionfixes):,} GPS fixes has a latitude "
                        f"in -90..90 and a longitude in -180..180; a .plt line is lat,lon,0,"
                        f"altitude,days,date,time.")
    kept = positionfixes[inside.to_numpy()]
    kept.attrs["outside_range"] = int((~inside).sum())
    return kept


def staypoints(positionfixes, config, progress: bool):
    """Sliding-window staypoints and the activity flag."""
    positionfixes, sp = positionfixes.generate_staypoints(
        method="sliding", dist_threshold=config.dist_threshold,
        time_threshold=config.time_threshold, gap_threshold=config.gap_threshold,
        include_last=True, print_progress=progress, n_jobs=config.n_jobs)
    if sp.empty:
        raise DataError(f"no staypoint found (no {config.time_threshold:g} min within "
                        f"{config.dist_threshold:g} m); check the tracks or the thresholds.")
    sp = sp.create_activity_flag(method="time_threshold", time_threshold=config.activity_time)
    return positionfixes, sp


def quality(positionfixes, sp, config) -> pd.DataFrame:
    """Per user: tracked days and the share of time covered by staypoints and triplegs."""
    if positionfixes["staypoint_id"].notna().all():  # no move at all: trackintel's
        triplegs = sp.iloc[:0]                         # generate_triplegs raises IndexError
    else:
        _, triplegs = positionfixes.generate_triplegs(sp)
    columns = ["user_id", "started_at", "finished_at"]
    records = pd.concat([pd.DataFrame(sp[columns]), pd.DataFrame(triplegs[columns])])
    return steps.user_quality(records, config.min_days, config.quality_window)


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
