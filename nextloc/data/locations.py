"""Where the locations are: the dataset's optional locations file, and the (lon, lat) of every
encoded class.

``locations_geolife.csv`` holds one row per raw ``location_id`` of the staypoints, with its
center as WKT (``POINT (lon lat)``, degrees, WGS84). The classes of :mod:`nextloc.data.split` are
re-encoded ids (0 padding, 1 unseen, 2..N+1 the train locations in ascending raw id), so
``Dataset.location_ids`` maps each class back to its raw id, and :func:`coordinates_for`
looks the coordinates up through it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.core.errors import DataError
from nextloc.data.dataset_checks import coverage_note
from nextloc.data.datasets import GEOLIFE_FILES, dataset_files
from nextloc.data.presplit import split_files

LOCATIONS_FILE = GEOLIFE_FILES["locations"]
POINT = r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$"


def load_locations(data_dir: str | Path) -> pd.DataFrame | None:
    """``id, lon, lat`` of every location of a dataset folder (``locations.csv``, or
    ``locations_geolife.csv`` beside the Geolife files), or None when it has no locations file.
    Either ``lon`` and ``lat`` columns or a WKT ``center`` column are read. A folder of published
    split files (nextloc.data.presplit) has none: Foursquare's rescaled coordinates are not degrees."""
    if split_files(data_dir):
        return None
    path = dataset_files(data_dir).locations
    if path is None:
        return None
    try:
        frame = pd.read_csv(path, usecols=lambda column: column in {"id", "lon", "lat", "center"})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read as CSV ({err}).") from err
    if "center" in frame.columns and not {"lon", "lat"} <= set(frame.columns):
        points = frame["center"].astype(str).str.extract(POINT)
        frame = frame.assign(lon=pd.to_numeric(points[0], errors="coerce"),
                             lat=pd.to_numeric(points[1], errors="coerce"))
    if not {"id", "lon", "lat"} <= set(frame.columns):
        raise DataError(f"{path}: needs an 'id' column and 'lon' and 'lat' columns or a WKT "
                        f"'center' column; found {list(frame.columns)}.")
    frame = frame[["id", "lon", "lat"]].apply(pd.to_numeric, errors="coerce")  # text -> NaN
    bad = (frame.isna().any(axis=1) | frame["id"].duplicated(keep=False)
           | (frame["id"] != frame["id"].round())
           | (frame["lon"].abs() > 180) | (frame["lat"].abs() > 90)).to_numpy()
    if bad.any():
        raise DataError(f"{path}: data rows {np.flatnonzero(bad)[:3].tolist()} need a unique "
                        f"whole-number 'id' and coordinates (lon in -180..180, lat in -90..90).")
    frame = frame.astype({"id": np.int64})
    frame.attrs["source"] = str(path)  # for the coverage note of with_coordinates
    return frame


def coordinates_for(location_ids: np.ndarray, locations: pd.DataFrame) -> np.ndarray:
    """float64 [len(location_ids), 2] (lon, lat) of each raw id; NaN for ids below 0 (padding,
    unseen) and for ids the locations file does not list."""
    table = locations.set_index("id")[["lon", "lat"]]
    coordinates = table.reindex(location_ids).to_numpy(np.float64, copy=True)
    coordinates[location_ids < 0] = np.nan
    return coordinates


def with_coordinates(data, locations: pd.DataFrame | None):
    """A :class:`~nextloc.data.split.Dataset` whose splits all carry the (lon, lat) of every
    class; ``data`` itself when there are no locations."""
    if locations is None or data.location_ids is None:
        return data
    coordinates = coordinates_for(data.location_ids, locations)
    notes = coverage_note(data.location_ids, coordinates,
                          locations.attrs.get("source", "the locations file"))
    return replace(data, splits={name: replace(split, coordinates=coordinates)
                                 for name, split in data.splits.items()},
                   notes=tuple(data.notes) + tuple(notes))
