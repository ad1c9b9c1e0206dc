"""Synthetic raw GPS tracks in Geolife's .plt layout, whose stays are known by construction:
two users go home -> work -> home every day (shared by the preprocessing tests and the
hostile-input tests of the command line)."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

HEADER = ("Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n"
          "0,2,255,My Track,0,0,2,0\n0\n")


# --- synthetic tracks: home -> work -> home, every day -----------------------------------------

HOMES = {1: (39.90, 116.30), 2: (39.95, 116.45)}
WORK = (39.98, 116.32)  # both users work in the same building: one shared location
DAYS = 12


def fixes(start: datetime, minutes: int, at, to=None, step: int = 2):
    """(time, lat, lon) every ``step`` minutes: still at ``at`` (a few metres of jitter) or
    moving in a straight line to ``to``."""
    rng = np.random.default_rng(int(start.timestamp()))
    for k in range(0, minutes, step):
        share = k / minutes if to is not None else 0.0
        lat = at[0] + share * ((to or at)[0] - at[0]) + rng.normal(0, 2e-5)
        lon = at[1] + share * ((to or at)[1] - at[1]) + rng.normal(0, 2e-5)
        yield start + timedelta(minutes=k), lat, lon


def write_user(folder: Path, user: int) -> None:
    """One .plt per day: home until 08:00, 30 min to work, work until 17:00, 30 min home."""
    home = HOMES[user]
    for day in range(DAYS):
        midnight = datetime(2008, 10, 6) + timedelta(days=day)
        points = [*fixes(midnight, 480, home), *fixes(midnight + timedelta(hours=8), 30, home,
                                                      WORK, step=1),
                  *fixes(midnight + timedelta(hours=8.5), 510, WORK),
                  *fixes(midnight + timedelta(hours=17), 30, WORK, home, step=1),
                  *fixes(midnight + timedelta(hours=17.5), 390, home)]
        lines = [f"{lat:.6f},{lon:.6f},0,150,0,{t:%Y-%m-%d},{t:%H:%M:%S}" for t, lat, lon in points]
        path = folder / f"{user:03d}" / "Trajectory" / f"{midnight:%Y%m%d}000000.plt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "\n".join(lines) + "\n")
