"""Synthetic staypoint tables of a chosen size, for measuring how the cost of sample building and
training grows with the number of samples and of locations (``nextloc benchmark``). They carry
no behaviour worth predicting: a few favourite places per user, the rest drawn at random."""
from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_staypoints(users: int, days: int, locations: int, stays_per_day: int = 3,
                         favourites: int = 5, elsewhere: float = 0.4,
                         seed: int = 0) -> pd.DataFrame:
    """A staypoint table in the dataset schema: ``users`` users, each with ``stays_per_day``
    stays on every one of ``days`` days; a share ``elsewhere`` of the stays is uniform over
    ``locations`` places, the others at one of the user's ``favourites`` places."""
    rng = np.random.default_rng(seed)
    per_user = days * stays_per_day
    user = np.repeat(np.arange(1, users + 1), per_user)
    day = np.tile(np.repeat(np.arange(days), stays_per_day), users)
    slot = np.tile(np.arange(stays_per_day), users * days)
    start_min = slot * (1440 // stays_per_day) + rng.integers(0, 1440 // stays_per_day,
                                                              len(user))
    favourite = rng.integers(0, locations, (users, favourites))
    location = np.where(rng.random(len(user)) >= elsewhere,
                        favourite[user - 1, rng.integers(0, favourites, len(user))],
                        rng.integers(0, locations, len(user)))
    return pd.DataFrame({"id": np.arange(len(user)), "user_id": user, "location_id": location,
                         "start_day": day, "start_min": start_min,
                         "duration": rng.integers(25, 600, len(user)), "weekday": day % 7})
