"""A dataset folder on disk: which files it holds, reading them, and checking every value.

Two layouts are recognised (see the README, "Your own data"):

- the generic one: ``staypoints.csv``, optional ``valid_ids.csv`` (every staypoint may be a
  prediction target when it is absent) and optional ``locations.csv``; what
  ``nextloc preprocess`` writes;
- the shared Geolife files of Hong et al. (2023) under their own names:
  ``dataSet_geolife.csv``, ``valid_ids_geolife.csv`` (required, as published) and
  ``locations_geolife.csv``.

Staypoints need ``id, user_id, location_id, start_day, start_min, weekday`` and usually
``duration`` (minutes); other columns are ignored. Check-in data has no durations: when the
``duration`` column is absent, every duration is 0 and the dataset carries a note saying so.
Every message about a bad value names the file, the column, a few data rows (0-based, the
header excluded) and a few of the values, and is kept short whatever the file holds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.data.dataset_checks import check_header, check_ids, check_regular_file, shift_days
from nextloc.core.errors import DataError

GEOLIFE_FILES = {"staypoints": "dataSet_geolife.csv", "valid_ids": "valid_ids_geolife.csv",
                 "locations": "locations_geolife.csv"}
GENERIC_FILES = {"staypoints": "staypoints.csv", "valid_ids": "valid_ids.csv",
                 "locations": "locations.csv"}
REQUIRED_COLUMNS = ("id", "user_id", "location_id", "start_day", "start_min", "weekday")
INTEGER_COLUMNS = REQUIRED_COLUMNS
# (column, lowest, highest or None, what the rule says)
RANGES = (("user_id", 1, None, ">= 1 (0 is reserved for padding)"),
          ("start_day", 0, None, ">= 0 (days since the user's first record)"),
          ("start_min", 0, 1439, "in 0..1439 (minute of the day)"),
          ("weekday", 0, 6, "in 0..6 (0 = Monday)"),
          ("duration", 0, None, ">= 0 (minutes)"))
SHOWN = 3           # rows and values quoted in a message
VALUE_CHARS = 24    # characters of one quoted value
MESSAGE_CHARS = 400
MAX_INTEGER = 2 ** 53  # exact in float64, and far inside int64


@dataclass(frozen=True)
class DatasetFiles:
    folder: Path
    staypoints: Path
    valid_ids: Path | None   # None: every staypoint is a valid target
    locations: Path | None   # None: no coordinates


def clip_text(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def quote(values) -> str:
    """A few values for a message, each cut to a few characters."""
    return "[" + ", ".join(clip_text(repr(v), VALUE_CHARS) for v in list(values)[:SHOWN]) + "]"


def rows_text(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return f"data rows {rows[:SHOWN].tolist()}{more}"


def bad(path: Path, text: str) -> DataError:
    return DataError(clip_text(f"{path}: {text}"))


def dataset_files(folder: str | Path) -> DatasetFiles:
    """The files of a dataset folder, in either layout."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(clip_text(
            f"{folder}: data folder not found. Pass --data DIR or set NEXTLOC_DATA to a folder "
            f"holding {GENERIC_FILES['staypoints']} (or the Geolife "
            f"{GEOLIFE_FILES['staypoints']})."))
    generic = check_regular_file(folder / GENERIC_FILES["staypoints"])
    geolife = any([check_regular_file(folder / name) for name in GEOLIFE_FILES.values()])
    if generic and geolife:
        raise DataError(clip_text(f"{folder}: holds both {GENERIC_FILES['staypoints']} and Geolife "
                                  f"files; keep one dataset per folder."))
    if not generic and not geolife:
        raise DataError(clip_text(
            f"{folder}: no {GENERIC_FILES['staypoints']} (nor the Geolife "
            f"{GEOLIFE_FILES['staypoints']}) here; point --data or NEXTLOC_DATA at a dataset "
            f"folder."))
    names = GEOLIFE_FILES if geolife else GENERIC_FILES
    valid = folder / names["valid_ids"]
    locations = folder / names["locations"]
    return DatasetFiles(folder=folder, staypoints=folder / names["staypoints"],
                        valid_ids=valid if check_regular_file(valid) or geolife else None,
                        locations=locations if check_regular_file(locations) else None)


def read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV that must hold ``columns``, with numbers and no gaps in them."""
    if not path.is_file():
        raise bad(path, f"file not found. nextloc looked in {path.parent}.")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as err:
        raise bad(path, f"cannot be read as CSV ({clip_text(str(err), 160)}).") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise bad(path, f"missing column(s) {missing}; found {quote(frame.columns)[:-1]}"
                        f"{', ...' if len(frame.columns) > SHOWN else ''}].")
    if len(frame) == 0:
        raise bad(path, "has a header but no rows.")
    for column in columns:
        check_numeric(path, frame, column)
    return frame


def check_numeric(path: Path, frame: pd.DataFrame, column: str) -> None:
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        wrong = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        raise bad(path, f"column '{column}' must be numeric; {rows_text(wrong.to_numpy())} "
                        f"have values like {quote(values[wrong])}.")
    if values.isna().any():
        raise bad(path, f"column '{column}' has NaN/empty values ({rows_text(values.isna())}).")
    infinite = ~np.isfinite(values.to_numpy(np.float64))
    if infinite.any():
        raise bad(path, f"column '{column}' has infinite values ({rows_text(infinite)}).")


def check_staypoints(path: Path, frame: pd.DataFrame) -> None:
    """Integer ids and times, values in range, unique ids."""
    for column in INTEGER_COLUMNS:
        values = frame[column].to_numpy(np.float64)
        fractional = (values != np.floor(values)) | (np.abs(values) > MAX_INTEGER)
        if fractional.any():
            raise bad(path, f"column '{column}' must hold whole numbers (at most 2**53); "
                            f"{rows_text(fractional)} have {quote(frame[column][fractional])}.")
    for column, low, high, rule in RANGES:
        values = frame[column].to_numpy(np.float64)
        wrong = (values < low) | (values > high if high is not None else False)
        if wrong.any():
            raise bad(path, f"column '{column}' must be {rule}; {rows_text(wrong)} have "
                            f"{quote(frame[column][wrong])}.")
    duplicated = frame["id"].duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise bad(path, f"column 'id' must be unique; {rows_text(duplicated)} share ids "
                        f"{quote(frame['id'][duplicated].unique())}.")


def read_dataset(data_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(staypoints, valid ids, notes) of a dataset folder, every value checked."""
    files = dataset_files(data_dir)
    check_header(files.staypoints)
    header = _header(files.staypoints)
    notes = []
    columns = REQUIRED_COLUMNS + (("duration",) if "duration" in header else ())
    staypoints = read_csv(files.staypoints, columns)
    if "duration" not in header:
        staypoints["duration"] = 0
        notes.append(f"{files.staypoints.name} has no 'duration' column: every duration is 0 "
                     f"(check-in data); models see no stay lengths.")
    check_staypoints(files.staypoints, staypoints)
    staypoints = staypoints.astype({c: np.int64 for c in INTEGER_COLUMNS})
    check_ids(files.staypoints, staypoints)
    staypoints, shifted = shift_days(files.staypoints, staypoints)
    notes += shifted
    if files.valid_ids is None:
        return staypoints, staypoints["id"].to_numpy(np.int64), notes
    valid = read_csv(files.valid_ids, ("id",))["id"]
    fractional = valid.to_numpy(np.float64) != np.floor(valid.to_numpy(np.float64))
    if fractional.any():
        raise bad(files.valid_ids, f"column 'id' must hold whole numbers; "
                                   f"{rows_text(fractional)} have {quote(valid[fractional])}.")
    return staypoints, valid.to_numpy(np.int64), notes


def dataset_previous_day(data_dir: str | Path) -> int | None:
    """The history window a dataset folder was built for: ``options.previous_day`` of the
    ``preprocess.json`` that ``nextloc preprocess`` writes beside the tables, if any."""
    path = Path(data_dir) / "preprocess.json"
    if not check_regular_file(path):
        return None
    try:
        value = json.loads(path.read_text())["options"]["previous_day"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise bad(path, f"cannot be read ({type(err).__name__}); remove it or pass "
                        f"--previous-day.") from err
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(path, f"options.previous_day must be a whole number >= 1, not {value!r:.40}.")
    return value


def _header(path: Path) -> list[str]:
    """Column names only (an unreadable file is reported by :func:`read_csv`)."""
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return []
