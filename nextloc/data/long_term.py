"""Long-term knowledge of each user, from the training period: the places the user went to and
what the user did next after the current place, beyond the 7-day window of a sample.

For every sample (of any split) the user's *training-period* stays strictly before the sample's
target are counted: how often each place was visited, and how often each place followed a stay
at the sample's current place (the last step of its history). A validation or test sample
therefore sees the whole training period, like a Markov chain fitted on train; a training sample
sees only the training stays before its own target, so it never counts its own target and never
its future. The ``LONG_TERM_CANDIDATES`` places with the most transitions from the current place
(ties: the most visits, then the smallest id) are kept, as an int64 array [n, K, 3] of
(location, visits, transitions); unused slots are (0, 0, 0).

These are inputs computed from the data, not learned weights; :func:`table_size` says how many
counts they amount to, to report beside a model's parameter count.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd

LONG_TERM_CANDIDATES = 16


def long_term_candidates(train_rows: pd.DataFrame, user: np.ndarray, current: np.ndarray,
                         target_id: np.ndarray, k: int = LONG_TERM_CANDIDATES) -> np.ndarray:
    """[n, k, 3] candidates of the samples (``user``, ``current`` place, ``target_id``: the
    staypoint id of the target). ``train_rows``: the training-period stays, sorted by user and
    time, with columns ``user_id``, ``id`` and ``location`` (encoded)."""
    out = np.zeros((len(user), k, 3), dtype=np.int64)
    for user_id, stays in train_rows.groupby("user_id", sort=False):
        mine = np.flatnonzero(user == user_id)
        # How many of the user's training stays came before each target (all for later splits).
        before = pd.Index(stays["id"]).get_indexer(target_id[mine])
        before[before < 0] = len(stays)
        order = np.argsort(before, kind="stable")
        _fill_user(out, mine[order], before[order], stays["location"].to_numpy(), current)
    return out


def _fill_user(out, samples, before, locations, current) -> None:
    """Sweep the user's stays once, writing each sample's candidates when its prefix is counted."""
    visits, follows = Counter(), defaultdict(Counter)
    counted = 0
    for sample, prefix in zip(samples, before):
        for step in range(counted, prefix):
            visits[locations[step]] += 1
            if step > 0:
                follows[locations[step - 1]][locations[step]] += 1
        counted = prefix  # samples come in order of their prefix
        after_current = follows.get(current[sample], Counter())
        ranked = sorted(visits, key=lambda place: (-after_current[place], -visits[place], place))
        for slot, place in enumerate(ranked[:out.shape[1]]):
            out[sample, slot] = (place, visits[place], after_current[place])


def table_size(train_rows: pd.DataFrame) -> dict:
    """Non-zero counts over the whole training period: (user, place) visits and
    (user, place, next place) transitions."""
    ordered = train_rows[["user_id", "location"]]
    following = ordered.shift(-1)
    same_user = (following["user_id"] == ordered["user_id"]).to_numpy()
    pairs = pd.DataFrame({"user": ordered["user_id"].to_numpy()[same_user],
                          "a": ordered["location"].to_numpy()[same_user],
                          "b": following["location"].to_numpy()[same_user]})
    return {"visit_counts": int(len(ordered.drop_duplicates())),
            "transition_counts": int(len(pairs.drop_duplicates()))}
