"""Paired comparisons of two experiments with confidence intervals, the verdict rule, and the
multiplicity correction over every comparison of the book.

Two experiments are compared on the seeds both have (seed luck cancels out), as the mean of the
per-seed differences with a paired t interval: ``mean ± t(0.975, n - 1) · sd / sqrt(n)``. It
measures how much the difference moves when only the training randomness changes, on this test
set. A rule that learns no weights (``n_params == 0``, one run) is the same for every seed and is
compared with each seed of the other experiment.

:func:`two_stage_bootstrap` resamples seeds and then whole test users, and asks whether the
difference would hold for another draw of training randomness *and* of people from the same
period; the appendix reports it beside the t interval, and verdicts come from the t test.

The verdict of a comparison (:func:`verdict`) answers a claim as stated: its sign (after the
Benjamini-Hochberg correction over every comparison in the book), its claimed size, and, where
the sign is not established, equivalence within a declared margin (two one-sided tests: the
90 % interval inside ±margin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.8  # for the smallest effect a comparison could have detected
SUPPORTED, REFUTED, REFUTED_IN_SIZE = "supported", "refuted", "refuted in size"
EQUIVALENT, INCONCLUSIVE = "equivalent", "inconclusive"
VERDICTS = (SUPPORTED, REFUTED, REFUTED_IN_SIZE, EQUIVALENT, INCONCLUSIVE)
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

    @property
    def sd(self) -> float:
        return float(np.std(self.differences, ddof=1))

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def p_value(self) -> float:
        """Two-sided paired t test of a zero difference."""
        if self.sd == 0:
            return 1.0 if self.mean == 0 else 0.0
        t = self.mean / (self.sd / math.sqrt(self.n))
        return float(2 * scipy_stats.t.sf(abs(t), self.n - 1))

    def interval(self, level: float) -> tuple[float, float]:
        return t_interval(self.differences, level)[1:]

    def detectable(self) -> float:
        """The smallest true difference this many seeds would detect with 80 % power at the 5 %
        level, given the observed seed-to-seed spread of the difference."""
        df = self.n - 1
        return float((scipy_stats.t.ppf(1 - ALPHA / 2, df) + scipy_stats.t.ppf(POWER, df))
                     * self.sd / math.sqrt(self.n))

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


def from_differences(experiment: str, versus: str, differences: pd.Series) -> Comparison | None:
    """A comparison from per-seed differences in points (indexed by seed), or None with fewer
    than two."""
    if len(differences) < 2:
        return None
    mean, low, high = t_interval(differences)
    return Comparison(experiment, versus, tuple(int(s) for s in differences.index),
                      tuple(float(d) for d in differences), mean, low, high)


def compare(metrics: pd.DataFrame, experiment: str, versus: str, metric: str = "test_acc1",
            versus_metric: str | None = None) -> Comparison | None:
    """The paired comparison, or None with fewer than two shared seeds."""
    frame = paired(metrics, experiment, versus, metric, versus_metric)
    return from_differences(experiment, versus, frame["a"] - frame["b"])


def pool(comparisons: list[Comparison], label: str = "pooled") -> Comparison | None:
    """One estimate from several arms that test one hypothesis: per seed, the mean of the arms'
    differences, over the seeds every arm has; None when fewer than two seeds are shared."""
    if len(comparisons) == 1:
        return comparisons[0]
    frames = [pd.Series(c.differences, index=c.seeds) for c in comparisons]
    shared = pd.concat(frames, axis=1, join="inner")
    return from_differences(label, label, shared.mean(axis=1))


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def verdict(comparison: Comparison, q: float, expect: str, claimed=None,
            margin: float = 1.0) -> str:
    """The verdict on a claim about ``experiment − versus`` from its comparison.

    ``expect`` is 'higher', 'lower', 'either' (only a difference is claimed) or 'equal' (no
    difference is claimed); ``claimed`` an optional ``[low, high]`` range of the claimed size in
    points, signed like the difference; ``q`` the comparison's Benjamini-Hochberg q-value.

    - the sign is established (q <= 0.05): against the claimed sign (or any sign, for 'equal'),
      *refuted*; with the sign but a claimed size outside the 95 % interval, *refuted in size*;
      else *supported*;
    - the sign is not established: the 90 % interval inside ±margin, *equivalent* (no
      difference that matters, whatever was claimed); a claimed size outside the 95 % interval,
      *refuted*; else *inconclusive*.
    """
    outside = claimed is not None and (comparison.high < min(claimed)
                                       or comparison.low > max(claimed))
    if q <= ALPHA:
        observed = "higher" if comparison.mean > 0 else "lower"
        if expect == "equal" or expect in ("higher", "lower") and observed != expect:
            return REFUTED
        return REFUTED_IN_SIZE if outside else SUPPORTED
    low90, high90 = comparison.interval(1 - 2 * ALPHA)
    if -margin < low90 and high90 < margin:
        return EQUIVALENT
    return REFUTED if outside else INCONCLUSIVE


def two_stage_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, users: np.ndarray,
                        replicates: int = 2000, seed: int = 0,
                        level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the difference in accuracy (points) when first the seeds and then
    the whole test users are resampled with replacement. ``correct_a`` and ``correct_b`` are
    (seeds x samples) arrays of 0/1 on the shared seeds, in the same seed order."""
    codes, user_index = np.unique(users, return_inverse=True)
    difference = (np.atleast_2d(np.asarray(correct_a, dtype=float))
                  - np.atleast_2d(np.asarray(correct_b, dtype=float)))
    per_user = np.stack([np.bincount(user_index, weights=row, minlength=len(codes))
                         for row in difference])                       # seeds x users
    counts = np.bincount(user_index, minlength=len(codes)).astype(float)
    rng = np.random.default_rng(seed)
    n_seeds, n_users = per_user.shape
    seed_draws = rng.integers(0, n_seeds, size=(replicates, n_seeds))
    user_draws = rng.integers(0, n_users, size=(replicates, n_users))
    seed_mean = per_user[seed_draws].mean(axis=1)                      # replicates x users
    sums = np.take_along_axis(seed_mean, user_draws, axis=1).sum(axis=1)
    means = 100 * sums / counts[user_draws].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
