"""What the data chapter (``notebooks/data.ipynb``) measures on the samples, as tables written for a
reader: the split's sizes, history lengths, how often the target is in the history or among the
long-term candidates, and how long sample generation takes."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from nextloc.report.analysis import sample_features
from nextloc.data.split import UNSEEN, Split
from nextloc.report.readable import count, percent, readable

SUMMARY_NAMES = {"train": "training samples", "validation": "validation samples",
                 "test": "test samples", "num_classes": "classes (padding and unseen included)",
                 "num_users": "users"}


def summary_table(summary: dict) -> pd.DataFrame:
    """``Dataset.summary()`` as a one-column table of counts with thousands separators."""
    rows = {SUMMARY_NAMES.get(key, key): count(value) for key, value in summary.items()
            if key != "notes"}
    return pd.Series(rows, name="count").to_frame()


def length_table(splits: dict[str, Split]) -> pd.DataFrame:
    """History lengths per split: mean and std with one decimal, minimum, quartiles and maximum
    as whole stays."""
    stats = pd.DataFrame({name: pd.Series(s.lengths).describe() for name, s in splits.items()})
    stats = stats.drop(index="count").rename(index={"25%": "25th percentile", "50%": "median",
                                                    "75%": "75th percentile"})
    return stats.apply(lambda column: [f"{v:.1f}" if name in ("mean", "std") else f"{v:.0f}"
                                       for name, v in column.items()])


def target_counts(split: Split, num_locations: int) -> np.ndarray:
    """How often each location (classes 2 and up) is the target, most frequent first."""
    return np.sort(np.bincount(split.target, minlength=num_locations)[2:])[::-1]


def imbalance_sentence(counts: np.ndarray, rare: int = 5) -> str:
    return (f"The most frequent location is the target of {percent(counts[0] / counts.sum())} "
            f"of the training samples; {count((counts < rare).sum())} of the "
            f"{count(len(counts))} locations are the target of fewer than {rare} of them.")


def history_facts(split: Split) -> dict:
    """Samples, and the shares (fractions) of targets that are the unseen class, occur in the
    7-day history, are both, or equal the last location of the history."""
    features = sample_features(split)
    last = split.location[split.offsets[1:] - 1]
    unseen = split.target == UNSEEN
    return {"samples": len(split), "target is the unseen class": unseen.mean(),
            "target in the 7-day history": features["in_history"].mean(),
            "unseen target, unseen class in the history": (unseen & features["in_history"]).mean(),
            "target = last location": (last == split.target).mean()}


def long_term_facts(split: Split) -> dict:
    """Shares of targets among the long-term candidates (``split.long_term``), among them but not
    in the 7-day history, and equal to the first candidate."""
    in_history = sample_features(split)["in_history"].to_numpy()
    candidate = (split.long_term[..., 0] == split.target[:, None]).any(1)
    return {"target among the candidates": candidate.mean(),
            "... and not in the 7-day history": (candidate & ~in_history).mean(),
            "target is the first candidate": (split.long_term[:, 0, 0] == split.target).mean()}


def facts_table(splits: dict[str, Split], facts: Callable[[Split], dict]) -> pd.DataFrame:
    """``facts`` per split, one column per split, counts and percentages written out."""
    table = pd.DataFrame({name: facts(split) for name, split in splits.items()})
    counts = [row for row in table.index if row == "samples"]
    return readable(table, counts=counts, percents=[r for r in table.index if r not in counts])


def generation_seconds(frame: pd.DataFrame, valid_ids: np.ndarray, make: Callable,
                       repeats: int, previous_day: int = 7) -> float:
    """The best of ``repeats`` wall-clock times of ``make`` over the three splits of ``frame``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for code in range(3):
            make(frame[frame["split"] == code], valid_ids, previous_day)
        best = min(best, time.perf_counter() - start)
    return best
