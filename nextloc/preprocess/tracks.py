"""The trackintel steps of :mod:`nextloc.preprocess.pipeline` (trackintel: Martin et al. 2023), each
a thin call with the options of :class:`~nextloc.preprocess.pipeline.PreprocessConfig`. Imported
only when preprocessing, because trackintel and geopandas take a while to load."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import trackintel as ti

from nextloc.preprocess import steps
from nextloc.core.errors import DataError


def read_geolife(folder: Path, progress: bool) -> gpd.GeoDataFrame:
    """Every fix of every user folder (``<user>/Trajectory/*.plt``); users are the folder
    names as numbers."""
    try:
        positionfixes, _ = ti.io.read_geolife(str(folder), print_progress=progress)
    except (ValueError, OSError, pd.errors.ParserError, KeyError, IndexError) as err:
        raise DataError(f"{folder}: cannot read the Geolife .plt files "
                        f"({str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"
                        f"; each needs 6 header lines, then lat,lon,0,altitude,days,date,time."
                        ) from err
    if positionfixes.empty:
        raise DataError(f"{folder}: the .plt files hold no GPS fixes.")
    return inside_the_globe(folder, positionfixes)


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
