"""Shared fixtures: a tiny synthetic Geolife built through the real pipeline, and an isolated
cache folder so no test ever writes a cache into the repository."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nextloc.data.split import STAYPOINTS_FILE, VALID_IDS_FILE, build_dataset
from nextloc.data.locations import LOCATIONS_FILE, with_coordinates

# The test tensors are tiny, so extra intra-op threads buy nothing, and on a busy machine their
# OpenMP spin-waiting made the suite ~10x slower (38 s instead of 4 s on 2 shared cores).
torch.set_num_threads(1)

# Days per user differ so that the per-user split boundaries (60 % / 80 % of the user's last day)
# differ too. At least ~40 days are needed: the validation period (20 % of the days) must span
# more than `previous_day` = 7 days, or it holds no sample at all.
DAYS_PER_USER = {1: 50, 2: 44, 3: 56}
# Raw ids 12..14 first appear in the validation/test periods, so the unseen class 1 occurs there.
OLD_LOCATIONS, NEW_LOCATIONS, NEW_FROM_DAY = np.arange(12), np.arange(12, 15), 32


def make_staypoints(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A few stays per day for 3 users, in the column layout of dataSet_geolife.csv."""
    rng = np.random.default_rng(seed)
    rows = []
    for user, days in DAYS_PER_USER.items():
        home = int(rng.integers(0, 4))
        for day in range(days):
            if day > 0 and rng.random() < 0.1:
                continue  # some empty days, so history windows vary in length
            for start in np.sort(rng.choice(np.arange(0, 1380, 15), rng.integers(2, 5),
                                            replace=False)):
                pool = (np.concatenate([OLD_LOCATIONS, NEW_LOCATIONS])
                        if day >= NEW_FROM_DAY else OLD_LOCATIONS)
                location = home if rng.random() < 0.4 else int(rng.choice(pool))
                duration = float(rng.integers(10, 600))
                rows.append({"user_id": user, "location_id": location, "duration": duration,
                             "start_day": day, "end_day": day, "start_min": int(start),
                             "end_min": int(min(start + duration, 1439)), "weekday": day % 7})
    staypoints = pd.DataFrame(rows)
    staypoints.insert(0, "id", np.arange(len(staypoints)))
    staypoints.loc[5, "duration"] = 5000.0  # one stay longer than the two-day clip
    # Rows out of order: the pipeline must sort them itself.
    staypoints = staypoints.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    valid_ids = np.sort(staypoints["id"].to_numpy()[rng.random(len(staypoints)) > 0.15])
    return staypoints, valid_ids


def make_locations(seed: int = 0) -> pd.DataFrame:
    """Coordinates of every raw location id of :func:`make_staypoints`: ``lon, lat`` and the
    columns of locations_geolife.csv (WKT ``center``). A few places around Beijing from 50 m to ~20
    km apart, and one in Shanghai (~1,000 km away), as Geolife has."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([OLD_LOCATIONS, NEW_LOCATIONS])
    lon = 116.3 + rng.normal(0, 0.08, len(ids))
    lat = 39.98 + rng.normal(0, 0.06, len(ids))
    lon[1], lat[1] = lon[0] + 0.0005, lat[0]  # ~40 m from location 0
    lon[-1], lat[-1] = 121.47, 31.23
    centers = [f"POINT ({x:.12f} {y:.12f})" for x, y in zip(lon, lat)]
    return pd.DataFrame({"id": ids, "lon": lon, "lat": lat, "user_id": 0, "center": centers,
                         "extent": "POLYGON EMPTY"})


@pytest.fixture
def tiny_geo_data(tiny_data):
    """tiny_data whose splits carry the coordinates of :func:`make_locations`."""
    return with_coordinates(tiny_data, make_locations())


@pytest.fixture(autouse=True)
def nextloc_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own cache folder, so caches never land in the repo or leak across
    tests. Request it by name to look inside."""
    folder = tmp_path_factory.mktemp("nextloc-cache")
    monkeypatch.setenv("NEXTLOC_CACHE", str(folder))
    return folder


@pytest.fixture
def tiny_frames() -> tuple[pd.DataFrame, np.ndarray]:
    """(staypoints, valid_ids); fresh copies, so a test may corrupt them freely."""
    return make_staypoints()


@pytest.fixture
def tiny_data(tiny_frames):
    staypoints, valid_ids = tiny_frames
    return build_dataset(staypoints, valid_ids, previous_day=7)


@pytest.fixture
def write_csvs(tmp_path):
    """Factory: write (staypoints, valid_ids) as the two Geolife CSVs into a fresh folder.
    Either may be None to leave its file out; valid_ids may be an array or a ready DataFrame;
    ``locations`` (optional) is written as the locations file."""
    counter = iter(range(1_000_000))

    def write(staypoints: pd.DataFrame | None, valid_ids,
              locations: pd.DataFrame | None = None) -> Path:
        folder = tmp_path / f"geolife-{next(counter)}"
        folder.mkdir()
        if staypoints is not None:
            staypoints.to_csv(folder / STAYPOINTS_FILE, index=False)
        if valid_ids is not None:
            if not isinstance(valid_ids, pd.DataFrame):
                valid_ids = pd.DataFrame({"id": np.asarray(valid_ids)})
            valid_ids.to_csv(folder / VALID_IDS_FILE, index=False)
        if locations is not None:
            locations.to_csv(folder / LOCATIONS_FILE, index=False)
        return folder

    return write


@pytest.fixture
def tiny_data_dir(write_csvs, tiny_frames) -> Path:
    return write_csvs(*tiny_frames)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A temporary project (see tests/project_tools.py): a registry file, results/, book/runs/
    and runs/ under tmp_path/project, and every nextloc path pointing there, so a test can run,
    record and archive without touching the repository. Write the registry to
    ``registry_file(project)`` (tests/project_tools.py)."""
    from project_tools import make_project, rebase_paths

    root = make_project(tmp_path / "project", {"experiments": {}})
    rebase_paths(root, monkeypatch.setattr)
    return root
