"""Staypoints -> next-location samples, with the standard split of Hong et al. (2023).

A split is kept in flat "CSR" form: one array per history feature holding every history step of
every sample back to back, and ``offsets`` so that sample ``i`` owns steps ``offsets[i]:
offsets[i + 1]``. Batches: ``batching``; reading a folder: ``datasets`` (both in this package).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.core import npz_cache, paths
from nextloc.core.errors import DataError
from nextloc.data import dataset_checks
from nextloc.data.datasets import GEOLIFE_FILES, dataset_files, dataset_previous_day
from nextloc.data.locations import load_locations, with_coordinates
from nextloc.data.long_term import long_term_candidates
from nextloc.data.presplit import SPLIT_COLUMN, read_any, split_files

STAYPOINTS_FILE = GEOLIFE_FILES["staypoints"]
VALID_IDS_FILE = GEOLIFE_FILES["valid_ids"]
SPLITS = ("train", "validation", "test")
PAD, UNSEEN = 0, 1  # location ids reserved before the train-fitted ones (2..N+1)
MAX_DURATION_MIN = 60 * 24 * 2 - 1
CACHE_VERSION = 4


def default_data_dir() -> Path:
    """``$NEXTLOC_DATA`` if set, else ``../shared/data/geolife`` beside the project."""
    env = os.environ.get("NEXTLOC_DATA")
    return Path(env) if env else paths.PROJECT_ROOT.parent / "shared" / "data" / "geolife"


@dataclass
class Split:
    """The samples of one split. Per-step arrays have ``offsets[-1]`` entries, per-sample ``n``."""

    offsets: np.ndarray     # int64 [n + 1]
    location: np.ndarray    # int64 history location ids (encoded)
    weekday: np.ndarray     # int64 0 = Monday
    start_min: np.ndarray   # int64 minute of day the stay started
    duration: np.ndarray    # int64 minutes, clipped at two days
    days_ago: np.ndarray    # int64 days between the stay and the target
    user: np.ndarray        # int64 [n]
    target: np.ndarray      # int64 [n] encoded location to predict
    target_weekday: np.ndarray  # int64 [n] for error analysis only, never a model input
    target_day: np.ndarray      # int64 [n] days since the user's first record (any split)
    staypoint_id: np.ndarray    # int64 [n] id of the target staypoint
    # float64 [num_locations, 2] (lon, lat) of every encoded class, NaN where unknown (0, 1):
    # the same array in every split of a dataset; None when the dataset has no coordinates
    coordinates: np.ndarray | None = None
    # int64 [n, K, 3] counts of the user's training period before the target (see long_term)
    long_term: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @staticmethod
    def concat(parts: list["Split"]) -> "Split":
        offsets = [np.zeros(1, dtype=np.int64)]
        shift = 0
        for part in parts:
            offsets.append(part.offsets[1:] + shift)
            shift += part.offsets[-1]
        arrays = {name: np.concatenate([getattr(p, name) for p in parts])
                  for name in STEP_FIELDS + SAMPLE_FIELDS}
        if all(p.long_term is not None for p in parts):
            arrays["long_term"] = np.concatenate([p.long_term for p in parts])
        return Split(offsets=np.concatenate(offsets), coordinates=parts[0].coordinates, **arrays)


STEP_FIELDS = ("location", "weekday", "start_min", "duration", "days_ago")
SAMPLE_FIELDS = ("user", "target", "target_weekday", "target_day", "staypoint_id")
ARRAY_FIELDS = ("offsets",) + STEP_FIELDS + SAMPLE_FIELDS + ("long_term",)  # in the npz cache


@dataclass
class Dataset:
    splits: dict[str, Split]
    num_locations: int      # classes, padding 0 and unseen 1 included
    num_users: int          # user ids are 1..num_users; 0 is free for padding
    previous_day: int
    location_ids: np.ndarray | None = None  # int64 [num_locations] raw id per class; -1 for 0, 1
    notes: tuple[str, ...] = ()  # what the loader assumed, e.g. durations set to 0

    @property
    def coordinates(self) -> np.ndarray | None:
        return self.splits["train"].coordinates

    def summary(self) -> dict:
        summary = {**{name: len(split) for name, split in self.splits.items()},
                   "num_classes": self.num_locations, "num_users": self.num_users}
        return {**summary, "notes": list(self.notes)} if self.notes else summary


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first_of_each = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - first_of_each)


def read_staypoints(data_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(staypoints, valid ids) of a dataset folder, every value checked (any layout)."""
    staypoints, valid_ids, _ = read_any(data_dir)
    return staypoints, valid_ids


def split_and_encode(staypoints: pd.DataFrame, source: str = "staypoints") -> pd.DataFrame:
    """Sort, clip durations, assign each staypoint its split and encode locations on train.

    Per user, by ``start_day``: days < 60 % of the user's last day are train, < 80 % validation,
    the rest test (a published split is kept). Train locations become 2..N+1, all others 1.
    """
    frame = staypoints.sort_values(["user_id", "start_day", "start_min"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["duration"] = frame["duration"].clip(upper=MAX_DURATION_MIN).astype(np.int64)
    last_day = frame.groupby("user_id")["start_day"].transform("max").to_numpy()
    day = frame["start_day"].to_numpy()
    split = 2 - (day < 0.8 * last_day).astype(np.int64) - (day < 0.6 * last_day)
    frame["split"] = frame[SPLIT_COLUMN] if SPLIT_COLUMN in frame else split
    train_locations = dataset_checks.train_locations(frame, source)
    position = np.searchsorted(train_locations, frame["location_id"])
    position = np.minimum(position, len(train_locations) - 1)
    known = train_locations[position] == frame["location_id"].to_numpy()
    frame["location"] = np.where(known, position + 2, UNSEEN)
    return frame


def history_window(rows: pd.DataFrame, previous_day: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Per row of one split (sorted by user, day and minute): the first row of its history, the
    history's length (earlier stays of the user within ``previous_day`` days), and whether the
    row is at least ``previous_day`` days after the user's first record in the split."""
    user = rows["user_id"].to_numpy(np.int64)
    day = rows["start_day"].to_numpy(np.int64)
    first_day = rows.groupby("user_id")["start_day"].transform("min").to_numpy(np.int64)
    # One sorted key per row: history starts at the first row of the same user whose day is
    # >= day - previous_day. The gap between users keeps the search inside the user's block.
    key = user * (int(day.max(initial=0)) + previous_day + 1) + day
    history_start = np.searchsorted(key, key - previous_day, side="left")
    return history_start, np.arange(len(rows)) - history_start, day - first_day >= previous_day


def make_samples(rows: pd.DataFrame, valid_ids: np.ndarray, previous_day: int) -> Split:
    """All samples of one split, vectorized.

    ``rows`` holds one split, sorted by user, day and minute. A staypoint is a sample when it is
    at least ``previous_day`` days after the user's first record in the split, is a valid id, and
    has at least 2 earlier staypoints of the user within the previous ``previous_day`` days.
    """
    user = rows["user_id"].to_numpy(np.int64)
    day = rows["start_day"].to_numpy(np.int64)
    history_start, history_length, old_enough = history_window(rows, previous_day)
    index = np.arange(len(rows))
    is_sample = (old_enough & np.isin(rows["id"].to_numpy(np.int64), valid_ids)
                 & (history_length >= 2))
    target_rows = index[is_sample]
    starts, lengths = history_start[is_sample], history_length[is_sample]
    steps = _ranges(starts, lengths)
    step_target = np.repeat(target_rows, lengths)
    column = {name: rows[name].to_numpy(np.int64)
              for name in ("location", "weekday", "start_min", "duration", "id")}
    return Split(
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        location=column["location"][steps], weekday=column["weekday"][steps],
        start_min=column["start_min"][steps], duration=column["duration"][steps],
        days_ago=day[step_target] - day[steps],
        user=user[target_rows], target=column["location"][target_rows],
        target_weekday=column["weekday"][target_rows], target_day=day[target_rows],
        staypoint_id=column["id"][target_rows])


def make_samples_by_loop(rows: pd.DataFrame, valid_ids: np.ndarray, previous_day: int) -> Split:
    """The same samples, one row at a time: the readable specification, kept for the tests and
    the data-preparation benchmark (it is ~100x slower than :func:`make_samples`)."""
    valid = set(valid_ids.tolist())
    samples = []
    for _, user_rows in rows.groupby("user_id", sort=False):
        user_rows = user_rows.reset_index(drop=True)
        first_day = user_rows["start_day"].min()
        for index, row in user_rows.iterrows():
            if row["start_day"] - first_day < previous_day or row["id"] not in valid:
                continue
            history = user_rows.iloc[:index]
            history = history[history["start_day"] >= row["start_day"] - previous_day]
            if len(history) < 2:
                continue
            samples.append((history, row))
    lengths = np.array([len(h) for h, _ in samples], dtype=np.int64)

    def steps(column: str) -> np.ndarray:
        return np.concatenate([h[column].to_numpy(np.int64) for h, _ in samples])

    return Split(
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        location=steps("location"), weekday=steps("weekday"), start_min=steps("start_min"),
        duration=steps("duration"),
        days_ago=np.concatenate([(r["start_day"] - h["start_day"]).to_numpy(np.int64)
                                 for h, r in samples]),
        user=np.array([r["user_id"] for _, r in samples], dtype=np.int64),
        target=np.array([r["location"] for _, r in samples], dtype=np.int64),
        target_weekday=np.array([r["weekday"] for _, r in samples], dtype=np.int64),
        target_day=np.array([r["start_day"] for _, r in samples], dtype=np.int64),
        staypoint_id=np.array([r["id"] for _, r in samples], dtype=np.int64))


def build_dataset(staypoints: pd.DataFrame, valid_ids: np.ndarray, previous_day: int = 7,
                  source: str = "staypoints") -> Dataset:
    if previous_day < 1:
        raise DataError(f"previous_day must be at least 1 day, got {previous_day}.")
    frame = split_and_encode(staypoints, source)
    train_rows, splits = frame[frame["split"] == 0], {}
    for code, name in enumerate(SPLITS):
        split = make_samples(frame[frame["split"] == code], valid_ids, previous_day)
        if len(split) == 0:
            raise DataError(f"{source}: the {name} split has no samples with previous_day="
                            f"{previous_day}; check the data and the split rules.")
        current = split.location[split.offsets[1:] - 1]  # where each prediction is made
        splits[name] = replace(split, long_term=long_term_candidates(
            train_rows, split.user, current, split.staypoint_id))
    num_locations = int(frame["location"].max()) + 1
    location_ids = np.full(num_locations, -1, dtype=np.int64)  # class -> raw id (-1: 0, 1)
    location_ids[frame["location"].to_numpy()] = frame["location_id"].to_numpy()
    location_ids[[PAD, UNSEEN]] = -1
    return Dataset(splits=splits, num_locations=num_locations,
                       num_users=int(frame["user_id"].max()), previous_day=previous_day,
                       location_ids=location_ids)


def _cache_key(data_dir: Path, previous_day: int) -> str:
    files = split_files(data_dir) or dataset_files(data_dir).__dict__
    digest = hashlib.sha256(f"v{CACHE_VERSION}|previous_day={previous_day}".encode())
    for path in (files[name] for name in files if name not in ("folder", "locations")):
        digest.update(path.read_bytes() if path is not None else b"|all ids valid|")
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("NEXTLOC_CACHE", paths.PROJECT_ROOT / ".cache"))


def load_dataset(data_dir: str | Path | None = None, previous_day: int | None = None,
                 use_cache: bool = True) -> Dataset:
    """Load the samples of all three splits of a dataset folder (see nextloc.data.datasets), from an
    npz cache keyed by the file contents and ``previous_day`` when one exists. A cache that
    cannot be read is rebuilt. ``previous_day`` defaults to the folder's own (the window
    ``nextloc preprocess`` built its valid ids for), else 7."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    staypoints, valid_ids, notes = read_any(data_dir)
    if previous_day is None:
        previous_day = dataset_previous_day(data_dir) or 7
    cache_file = cache_dir() / f"samples-{_cache_key(data_dir, previous_day)}.npz"
    data = _load_cache(cache_file) if use_cache else None
    if data is None:
        data = build_dataset(staypoints, valid_ids, previous_day, source=str(data_dir))
        if use_cache:
            _save_cache(cache_file, data)
    return with_coordinates(replace(data, notes=tuple(notes)), load_locations(data_dir))


def _save_cache(path: Path, data: Dataset) -> None:
    arrays = {f"{split}.{name}": getattr(samples, name)
              for split, samples in data.splits.items() for name in ARRAY_FIELDS}
    arrays["location_ids"] = data.location_ids
    meta = {"num_locations": data.num_locations, "num_users": data.num_users,
            "previous_day": data.previous_day}
    npz_cache.save(path, arrays, meta)


def _load_cache(path: Path) -> Dataset | None:
    """The cached samples, or None when the file is missing or damaged (then it is rebuilt)."""
    keys = [f"{split}.{name}" for split in SPLITS for name in ARRAY_FIELDS]
    stored = npz_cache.load(path, keys + ["location_ids"])
    if stored is None:
        return None
    arrays, meta = stored
    splits = {split: Split(**{name: arrays[f"{split}.{name}"] for name in ARRAY_FIELDS})
              for split in SPLITS}
    if any(len(s.offsets) != len(s) + 1 or s.offsets[-1] != len(s.location)
           for s in splits.values()):
        return None
    try:
        return Dataset(splits=splits, num_locations=int(meta["num_locations"]),
                           num_users=int(meta["num_users"]),
                           previous_day=int(meta["previous_day"]),
                           location_ids=arrays["location_ids"])
    except (KeyError, TypeError, ValueError):
        return None
