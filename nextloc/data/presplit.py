"""A dataset published as three split files, read with the publisher's split, not ours.

Foursquare NYC as LLM-Mob (Wang et al. 2023, repository xlwang233/LLM-Mob, ``data/fsq/``)
published it: ``foursquare_train.csv``, ``foursquare_valid.csv``, ``foursquare_test.csv``, one
check-in per row (``id, user_id, location_id, start_day, start_min, weekday``; latitude and
longitude rescaled to [-1, 1], which nextloc does not use). Any folder holding exactly one
``<name>_train.csv``, ``<name>_valid.csv`` and ``<name>_test.csv`` is read this way.

What the loader does with it (the chapter "A second city" states it):

- the split is the files': a row of ``<name>_valid.csv`` is a validation row whatever its day;
- every row may be a target (the folder has no valid-ids file), and the sample rule is the
  standard one, applied within each file: at least ``previous_day`` days after the user's first
  row of that file, at least 2 earlier rows of the user in that file within the window;
- check-ins have no duration: every duration is 0, the models' duration input carries nothing,
  and the dataset says so in its notes (:data:`NO_DURATION_NOTE`);
- locations are re-encoded on the training file (2..N+1, unseen 1, padding 0) as for Geolife.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.data.dataset_checks import check_header, check_ids, check_regular_file
from nextloc.data.datasets import (INTEGER_COLUMNS, REQUIRED_COLUMNS, _header, check_staypoints,
                              clip_text, read_csv, read_dataset)
from nextloc.core.errors import DataError

SUFFIXES = {"train": "_train.csv", "validation": "_valid.csv", "test": "_test.csv"}
SPLIT_COLUMN = "published_split"  # 0 train, 1 validation, 2 test: the files' own split
NO_DURATION_NOTE = ("check-ins have no duration: every duration is 0, so the models' duration "
                    "input carries nothing")
PUBLISHED_SPLIT_NOTE = "the split is the published one: one file per split"


def split_files(folder: str | Path) -> dict[str, Path] | None:
    """The three split files of ``folder``, or None when it holds none (another layout). A
    folder with some but not all of them, or with two datasets' files, is one clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = {split: sorted(p for p in folder.glob(f"*{suffix}") if check_regular_file(p))
             for split, suffix in SUFFIXES.items()}
    if not any(found.values()):
        return None
    prefixes = sorted({p.name[:-len(SUFFIXES[split])] for split, files in found.items()
                       for p in files})
    if len(prefixes) > 1:
        raise DataError(clip_text(f"{folder}: split files of several datasets ({prefixes}); "
                                  f"keep one dataset per folder."))
    wanted = {split: folder / f"{prefixes[0]}{suffix}" for split, suffix in SUFFIXES.items()}
    missing = [path.name for path in wanted.values() if not path.is_file()]
    if missing:
        raise DataError(clip_text(
            f"{folder / missing[0]}: split file not found; a folder of published splits holds "
            f"{', '.join(p.name for p in wanted.values())} (missing: {', '.join(missing)})."))
    return wanted


def read_split_file(path: Path) -> tuple[pd.DataFrame, bool]:
    """One split file, every value checked; whether it has a duration column."""
    check_header(path)
    has_duration = "duration" in _header(path)  # an unreadable file: read_csv says why
    frame = read_csv(path, REQUIRED_COLUMNS + (("duration",) if has_duration else ()))
    if not has_duration:
        frame["duration"] = 0
    check_staypoints(path, frame)
    frame = frame.astype({c: np.int64 for c in INTEGER_COLUMNS})
    check_ids(path, frame)
    return frame, has_duration


def read_split_folder(folder: str | Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(rows of all three files with their split in :data:`SPLIT_COLUMN`, valid ids = every
    id, notes), as :func:`nextloc.data.datasets.read_dataset` returns for the other layouts."""
    files = split_files(folder)
    frames, durations = [], []
    for code, (split, path) in enumerate(files.items()):
        frame, has_duration = read_split_file(path)
        frames.append(frame.assign(**{SPLIT_COLUMN: code}))
        durations.append(has_duration)
    rows = pd.concat(frames, ignore_index=True)
    twice = rows["id"].duplicated(keep=False)
    if twice.any():
        raise DataError(clip_text(f"{Path(folder)}: ids must be unique over the three split "
                                  f"files; {int(twice.sum())} rows share ids like "
                                  f"{rows['id'][twice].unique()[:3].tolist()}."))
    notes = [f"{Path(folder).name}: {PUBLISHED_SPLIT_NOTE}"]  # days as published
    if not all(durations):
        notes.append(f"{Path(folder).name}: {NO_DURATION_NOTE}.")
        rows["duration"] = 0
    return rows, rows["id"].to_numpy(np.int64), notes


def read_any(folder: str | Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(staypoints, valid ids, notes) of a dataset folder in any layout."""
    return read_split_folder(folder) if split_files(folder) else read_dataset(folder)

