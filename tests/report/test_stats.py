"""Paired intervals and the verdict rule, against values computed by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nextloc.report.stats import (EQUIVALENT, INCONCLUSIVE, REFUTED, REFUTED_IN_SIZE, SUPPORTED,
                           Comparison, benjamini_hochberg, compare, from_differences, paired, pool,
                           t_interval, two_stage_bootstrap, verdict)


def test_t_interval_by_hand():
    # mean 1.0; sample sd sqrt(0.1 / 4) = 0.158114; se = 0.0707107; t(0.975, 4) = 2.776445
    mean, low, high = t_interval([1.0, 1.2, 0.8, 1.1, 0.9])
    assert mean == pytest.approx(1.0)
    assert low == pytest.approx(1.0 - 0.196324, abs=1e-6)
    assert high == pytest.approx(1.0 + 0.196324, abs=1e-6)


def test_three_seeds_use_two_degrees_of_freedom():
    # [1, 2, 3]: mean 2, sd 1, t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    mean, low, high = t_interval([1, 2, 3])
    assert (low, high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)


def test_t_interval_needs_two_differences():
    with pytest.raises(ValueError):
        t_interval([0.5])


def comparison(differences) -> Comparison:
    return from_differences("a", "b", pd.Series(differences, index=range(len(differences))))


def test_p_value_and_detectable_effect_by_hand():
    c = comparison([1, 2, 3])
    # t = 2 / (1 / sqrt 3) = 3.464102 on 2 df: two-sided p = 0.074180
    assert c.p_value == pytest.approx(0.074180, abs=1e-6)
    # (t(0.975, 2) + t(0.8, 2)) / sqrt 3 = (4.302653 + 1.060660) / 1.732051 = 3.096510
    assert c.detectable() == pytest.approx(3.096510, abs=1e-5)
    assert c.half_width == pytest.approx(2.484138, abs=1e-6)


def test_benjamini_hochberg_by_hand():
    # sorted p 0.01, 0.02, 0.03, 0.5 with m = 4: 0.04, 0.04, 0.04, 0.5 (monotone from the top)
    q = benjamini_hochberg([0.03, 0.5, 0.01, 0.02])
    assert list(q) == pytest.approx([0.04, 0.5, 0.04, 0.04])
    assert list(benjamini_hochberg([0.9, 0.95])) == pytest.approx([0.95, 0.95])


@pytest.mark.parametrize("differences, q, expect, claimed, expected", [
    ([1.3, 1.4, 1.5], 0.01, "higher", (2, 3), REFUTED_IN_SIZE),   # sign holds, size does not
    ([2.4, 2.5, 2.6], 0.01, "higher", (2, 3), SUPPORTED),
    ([2.4, 2.5, 2.6], 0.01, "lower", None, REFUTED),
    ([-2.4, -2.5, -2.6], 0.01, "lower", None, SUPPORTED),
    ([2.4, 2.5, 2.6], 0.01, "equal", None, REFUTED),
    ([2.4, 2.5, 2.6], 0.01, "either", None, SUPPORTED),
    ([2.4, 2.5, 2.6], 0.2, "higher", None, INCONCLUSIVE),        # the q-value decides, not p
    ([0.1, -0.1, 0.05, 0.0], 0.9, "higher", (3, 5), EQUIVALENT),   # 90 % CI inside ±1
    ([0.1, -0.9, 1.0, 0.2], 0.9, "higher", (3, 5), REFUTED),       # not equivalent, size ruled out
    ([0.1, -0.9, 1.0, 0.2], 0.9, "higher", None, INCONCLUSIVE),
])
def test_verdict_rule(differences, q, expect, claimed, expected):
    assert verdict(comparison(differences), q, expect, claimed, margin=1.0) == expected


def test_equivalence_uses_the_declared_margin():
    c = comparison([0.1, -0.9, 1.0, 0.2])
    low90, high90 = c.interval(0.90)
    assert -2 < low90 < -1 or 1 < high90 < 2          # outside ±1, inside ±2
    assert verdict(c, 0.9, "higher", None, margin=2.0) == EQUIVALENT


def test_pooling_averages_the_arms_per_shared_seed():
    first = from_differences("a", "x", pd.Series([1.0, 2.0, 3.0], index=[1, 2, 3]))
    second = from_differences("b", "x", pd.Series([3.0, 4.0, 9.0], index=[1, 2, 4]))
    pooled = pool([first, second])
    assert pooled.seeds == (1, 2)
    assert pooled.differences == pytest.approx((2.0, 3.0))
    assert pool([first]) is first


def metrics(rows: list[tuple[str, int, float]], n_params: int = 10) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": e, "seed": s, "test_acc1": a, "val_acc1": a + 0.05,
                          "n_params": n_params} for e, s, a in rows])


def test_compare_pairs_only_shared_seeds():
    table = metrics([("a", 1, 0.50), ("a", 2, 0.52), ("a", 3, 0.51), ("a", 4, 0.90),
                     ("b", 1, 0.40), ("b", 2, 0.41), ("b", 3, 0.43)])
    comparison = compare(table, "a", "b")
    assert comparison.seeds == (1, 2, 3)
    assert comparison.differences == pytest.approx((10.0, 11.0, 8.0))
    assert comparison.mean == pytest.approx(29 / 3)


def test_a_rule_without_weights_is_compared_with_every_seed():
    table = pd.concat([metrics([("model", 1, 0.50), ("model", 2, 0.54)]),
                       metrics([("rule", 42, 0.40)], n_params=0)])
    frame = paired(table, "model", "rule")
    assert list(frame.index) == [1, 2]
    assert list(frame["b"]) == pytest.approx([40.0, 40.0])
    assert compare(table, "model", "rule").mean == pytest.approx(12.0)


def test_compare_of_two_metrics_of_one_experiment():
    table = metrics([("a", 1, 0.50), ("a", 2, 0.52)])
    comparison = compare(table, "a", "a", "val_acc1", "test_acc1")
    assert comparison.differences == pytest.approx((5.0, 5.0))


def test_compare_needs_two_shared_seeds():
    assert compare(metrics([("a", 1, 0.5), ("b", 1, 0.4), ("b", 2, 0.4)]), "a", "b") is None
    assert compare(metrics([("a", 1, 0.5)]), "a", "missing") is None


def test_two_stage_bootstrap_resamples_whole_users():
    # one seed; user 0: ten samples all right in a and wrong in b (+100 points), user 1: ten
    # samples where a and b agree (0). Resampling users gives 0, 50 or 100 with probabilities
    # 1/4, 1/2, 1/4, so the 95 % interval is [0, 100]; resampling samples would be narrow.
    a = np.concatenate([np.ones(10), np.zeros(10)])[None, :]
    b = np.zeros((1, 20))
    users = np.repeat([7, 9], 10)
    assert two_stage_bootstrap(a, b, users, replicates=4000) == pytest.approx((0.0, 100.0))


def test_two_stage_bootstrap_resamples_seeds():
    # every user alike; seed 1 differs by +100 points on every sample, seed 2 by 0: the seed
    # draw alone gives 0, 50 or 100, so the interval spans the seeds' spread
    a = np.array([np.ones(12), np.zeros(12)])
    b = np.zeros((2, 12))
    low, high = two_stage_bootstrap(a, b, np.arange(12) % 3, replicates=4000)
    assert (low, high) == pytest.approx((0.0, 100.0))
    assert two_stage_bootstrap(a, b, np.arange(12) % 3) == two_stage_bootstrap(
        a, b, np.arange(12) % 3)
