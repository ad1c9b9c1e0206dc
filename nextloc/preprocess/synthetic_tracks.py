"""Geolife-like raw GPS tracks of any number of users, for measuring how ``nextloc preprocess``
scales (``nextloc benchmark preprocess``). Each user has a home, a workplace and a third place
somewhere in a Beijing-sized box; every day they stay at home, travel to work, stay there,
sometimes visit the third place, and travel home. Fixes are sparse during stays and dense while
moving, as in Geolife; one ``.plt`` file per user and day, in the release's layout."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

HEADER = ("Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n"
          "0,2,255,My Track,0,0,2,0\n0\n")
BOX = ((39.80, 40.05), (116.20, 116.55))  # lat, lon: about 28 x 30 km
STAY_STEP_S, MOVE_STEP_S = 900, 60  # seconds between fixes while staying, while moving
JITTER_DEG = 2e-5  # a few metres of GPS noise
FIRST_DAY = datetime(2008, 10, 6)


def write_tracks(folder: str | Path, users: int, days: int = 10, seed: int = 0) -> int:
    """``users`` user folders ``000, 001, ...`` of ``days`` days each under ``folder``; returns
    the number of fixes written."""
    rng = np.random.default_rng(seed)
    written = 0
    for user in range(users):
        places = np.column_stack([rng.uniform(*BOX[0], 3), rng.uniform(*BOX[1], 3)])
        trajectory = Path(folder) / f"{user:03d}" / "Trajectory"
        trajectory.mkdir(parents=True, exist_ok=True)
        for day in range(days):
            start = FIRST_DAY + timedelta(days=day)
            seconds, points = _one_day(rng, places)
            lines = [f"{lat:.6f},{lon:.6f},0,150,0,{when:%Y-%m-%d},{when:%H:%M:%S}"
                     for (lat, lon), when in zip(points, _times(start, seconds))]
            (trajectory / f"{start:%Y%m%d}000000.plt").write_text(HEADER + "\n".join(lines)
                                                                    + "\n")
            written += len(lines)
    return written


def _times(start: datetime, seconds: np.ndarray):
    return (start + timedelta(seconds=int(second)) for second in seconds)


def _one_day(rng, places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since midnight and (lat, lon) of one day's fixes."""
    home, work, other = places
    leave = rng.uniform(7, 9) * 3600
    arrive, leave_work = leave + rng.uniform(20, 45) * 60, rng.uniform(17, 18.5) * 3600
    legs = [_stay(0, leave, home, rng), _move(leave, arrive, home, work, rng),
            _stay(arrive, leave_work, work, rng)]
    last = work
    if rng.random() < 0.4:  # an evening at the third place
        there = leave_work + rng.uniform(20, 40) * 60
        until = there + rng.uniform(1, 2.5) * 3600
        legs += [_move(leave_work, there, work, other, rng), _stay(there, until, other, rng)]
        leave_work, last = until, other
    back = leave_work + rng.uniform(20, 45) * 60
    legs += [_move(leave_work, back, last, home, rng), _stay(back, 86399, home, rng)]
    seconds = np.concatenate([leg[0] for leg in legs])
    return seconds, np.concatenate([leg[1] for leg in legs])


def _stay(start: float, end: float, at: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    seconds = np.arange(start, end, STAY_STEP_S)
    return seconds, at + rng.normal(0, JITTER_DEG, (len(seconds), 2))


def _move(start: float, end: float, origin: np.ndarray, target: np.ndarray,
          rng) -> tuple[np.ndarray, np.ndarray]:
    seconds = np.arange(start, end, MOVE_STEP_S)
    share = ((seconds - start) / (end - start))[:, None]
    return seconds, origin + share * (target - origin) + rng.normal(0, JITTER_DEG,
                                                                   (len(seconds), 2))
