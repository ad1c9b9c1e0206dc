"""Checks of a dataset folder that once let a damaged folder load silently wrong (issue 23):
companion files that exist but cannot be read as files, duplicated columns, users whose days do
not start at 0, out-of-range ids, a training period with no stay, and a locations file that
covers few of the places. Each either stops with one message naming the file, or (where the
data can be read correctly anyway) adds a note that ``nextloc data summary`` and ``nextloc
train`` print."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.core.errors import DataError, shorten

TRAIN_FRACTION = 0.6  # the train period of each user: days < 60 % of the user's last day
HEADER_CHARS = 1_000_000  # a header longer than this is no CSV header


def check_regular_file(path: Path) -> bool:
    """Whether ``path`` is there to be read. A name that exists but is no regular file (a
    dangling symlink, a named pipe, a folder) was once taken for "absent": a dangling
    valid_ids.csv made every stay a target, and a pipe would block the reader."""
    if path.is_file():
        return True
    if os.path.lexists(path):
        kind = ("a dangling symbolic link" if path.is_symlink() and not path.exists() else
                "a folder" if path.is_dir() else "not a regular file (a pipe or a device?)")
        raise DataError(f"{path}: exists but is {kind}; replace it with the file, or remove it.")
    return False


def check_header(path: Path) -> None:
    """No column named twice: pandas would read the first copy and rename the others."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader([handle.readline(HEADER_CHARS)]), [])
    except (OSError, csv.Error):
        return  # the reader that follows names the problem (a 50 MB column name, say)
    names = [name.strip() for name in header]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise DataError(f"{path}: column(s) {shorten(twice, 80)} appear more than once in the "
                        f"header; keep one of each.")


def check_ids(path: Path, staypoints: pd.DataFrame) -> None:
    """Location ids >= 0 (negative ids were taken for padding and lost their coordinates), and
    user ids no larger than the number of stays: a model allocates one embedding row per id up
    to the largest, so ``user_id: 2**40`` once asked for hundreds of terabytes."""
    negative = staypoints["location_id"].to_numpy() < 0
    if negative.any():
        raise DataError(f"{path}: column 'location_id' must be >= 0; data rows "
                        f"{np.flatnonzero(negative)[:3].tolist()} have "
                        f"{staypoints['location_id'][negative].unique()[:3].tolist()}.")
    largest, rows = int(staypoints["user_id"].max()), len(staypoints)
    if largest > rows:
        raise DataError(f"{path}: user_id {largest:,} is larger than the number of staypoints "
                        f"({rows:,}); models keep one row per user id up to the largest, so "
                        f"number the users 1..{staypoints['user_id'].nunique():,}.")


def shift_days(path: Path, staypoints: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Each user's days counted from that user's first record, as the split assumes (it cuts at
    60 % and 80 % of the user's last day: days counted from 1970 or from another user's start
    moved most stays into test). The shift changes no gap between stays."""
    first = staypoints.groupby("user_id")["start_day"].transform("min")
    shifted = int((staypoints.groupby("user_id")["start_day"].min() > 0).sum())
    if not shifted:
        return staypoints, []
    staypoints = staypoints.assign(start_day=staypoints["start_day"] - first)
    if "end_day" in staypoints:
        staypoints["end_day"] = staypoints["end_day"] - first
    return staypoints, [f"{path.name}: the days of {shifted} user(s) did not start at 0; they "
                        f"are counted from each user's first record (the split needs that)."]


def train_locations(frame: pd.DataFrame, source: str = "staypoints") -> np.ndarray:
    """The raw location ids of the training period; an empty training period is one message
    (it was an IndexError)."""
    train = frame.loc[frame["split"] == 0, "location_id"]
    if train.empty:
        raise DataError(f"{source}: no stay falls in the training period (the first "
                        f"{TRAIN_FRACTION:.0%} of each user's days); each user needs stays on "
                        f"several days ({len(frame):,} stays, last day "
                        f"{int(frame['start_day'].max()) if len(frame) else 0}).")
    return np.unique(train)


def coverage_note(location_ids: np.ndarray | None, coordinates: np.ndarray,
                  source: str) -> list[str]:
    """A note when the locations file lacks coordinates of places seen in training (classes
    2.., the ones models embed): a file covering 3 of 1,187 places was accepted silently."""
    if location_ids is None or len(coordinates) <= 2:
        return []
    missing = int(np.isnan(coordinates[2:]).any(axis=1).sum())
    if not missing:
        return []
    places = len(coordinates) - 2
    return [f"{source} has no coordinates for {missing:,} of the {places:,} places seen in "
            f"training (covers {places - missing:,}); geographic features are missing there."]
