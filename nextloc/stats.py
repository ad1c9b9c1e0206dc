"""Paired comparisons of two experiments with 95 % confidence intervals, and the verdict rule.

Two experiments are compared on the seeds both have (seed luck cancels out), as the mean of the
per-seed differences with a paired t interval: ``mean ± t(0.975, n - 1) · sd / sqrt(n)``. It
measures how much the difference moves when only the training randomness changes, on this test
set. A rule that learns no weights (``n_params == 0``, one run) is the same for every seed and is
compared with each seed of the other experiment.

A second interval, :func:`user_bootstrap`, resamples the test *users* (each with all their
samples) and asks whether the difference would hold on another draw of people from the same
period; the book reports it beside the t interval, and verdicts come from the t interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

LEVEL = 0.95
SUPPORTED, REFUTED, UNCLEAR = "supported", "refuted", "not distinguishable"
DIFFERS = "differs"
PENDING = "pending"


@dataclass(frozen=True)
class Comparison:
    """``experiment`` minus ``versus`` on shared seeds, in percentage points."""
    experiment: str
    versus: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.seeds)

    def text(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def t_interval(differences, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and two-sided ``level`` paired t interval of per-seed differences (n - 1 degrees of
    freedom). Needs two differences at least."""
    values = np.asarray(differences, dtype=float)
    if len(values) < 2:
        raise ValueError("a t interval needs at least two paired differences")
    mean = float(values.mean())
    half = (scipy_stats.t.ppf((1 + level) / 2, len(values) - 1)
            * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def runs_by_seed(metrics: pd.DataFrame, experiment: str, metric: str) -> pd.Series:
    """One experiment's ``metric`` indexed by seed (a single run of a rule without weights is
    indexed by ``None``: it holds for every seed)."""
    runs = metrics[metrics["experiment"] == experiment]
    if len(runs) == 1 and runs["n_params"].iloc[0] == 0:
        return pd.Series([float(runs[metric].iloc[0])], index=[None])
    return runs.set_index("seed")[metric].astype(float)


def paired(metrics: pd.DataFrame, experiment: str, versus: str, metric: str = "test_acc1",
           versus_metric: str | None = None) -> pd.DataFrame:
    """Columns ``a`` (experiment) and ``b`` (versus) on the seeds both have, in points."""
    a = runs_by_seed(metrics, experiment, metric)
    b = runs_by_seed(metrics, versus, versus_metric or metric)
    if None in a.index and None not in b.index:
        a = pd.Series(a.iloc[0], index=b.index)
    if None in b.index and None not in a.index:
        b = pd.Series(b.iloc[0], index=a.index)
    frame = pd.DataFrame({"a": a, "b": b}).dropna() * 100
    return frame.rename_axis("seed").sort_index()


def compare(metrics: pd.DataFrame, experiment: str, versus: str, metric: str = "test_acc1",
            versus_metric: str | None = None) -> Comparison | None:
    """The paired comparison, or None with fewer than two shared seeds."""
    frame = paired(metrics, experiment, versus, metric, versus_metric)
    if len(frame) < 2:
        return None
    differences = frame["a"] - frame["b"]
    mean, low, high = t_interval(differences)
    return Comparison(experiment, versus, tuple(int(s) for s in frame.index),
                      tuple(float(d) for d in differences), mean, low, high)


def arm_verdict(low: float, high: float, expect: str) -> str:
    """What an interval says about a claim that predicts ``expect`` ('higher' or 'lower') for the
    difference; ``expect='either'`` only asks whether the two differ. An interval that contains
    0 is not distinguishable, whatever the sign of its mean."""
    if low <= 0 <= high:
        return UNCLEAR
    if expect == "either":
        return DIFFERS
    observed = "higher" if low > 0 else "lower"
    return SUPPORTED if observed == expect else REFUTED


def claim_verdict(verdicts: list[str], rule: str = "all") -> str:
    """One verdict from the verdicts of a claim's arms (pending arms left out).

    Arms that agree give their verdict. Supported and refuted arms together are 'mixed'. Some
    arms supported (or refuted) and the rest not distinguishable is 'partly supported' ('partly
    refuted'), unless the claim's ``rule`` is 'any': a claim that one arm suffices to show."""
    done = [v for v in verdicts if v != PENDING]
    if not done:
        return PENDING
    kinds = set(done)
    if len(kinds) == 1:
        return done[0]
    if {SUPPORTED, REFUTED} <= kinds:
        return "mixed"
    decided = SUPPORTED if SUPPORTED in kinds else REFUTED
    return decided if rule == "any" else f"partly {decided}"


def user_bootstrap(differences: np.ndarray, users: np.ndarray, replicates: int = 2000,
                   seed: int = 0, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean per-sample difference when whole test users are resampled
    with replacement (samples of one user are not independent of each other)."""
    codes, users = np.unique(users, return_inverse=True)
    sums = np.bincount(users, weights=differences, minlength=len(codes))
    counts = np.bincount(users, minlength=len(codes)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(codes), size=(replicates, len(codes)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
