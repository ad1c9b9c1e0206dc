"""Paired intervals and the verdict rule, against values computed by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nextloc.stats import (PENDING, REFUTED, SUPPORTED, UNCLEAR, arm_verdict, claim_verdict,
                           compare, paired, t_interval, user_bootstrap)


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
    # all three differences are positive, yet the interval crosses 0
    assert arm_verdict(low, high, "higher") == UNCLEAR


def test_t_interval_needs_two_differences():
    with pytest.raises(ValueError):
        t_interval([0.5])


@pytest.mark.parametrize("low, high, expect, verdict", [
    (0.5, 2.0, "higher", SUPPORTED),
    (0.5, 2.0, "lower", REFUTED),
    (-2.0, -0.5, "lower", SUPPORTED),
    (-2.0, -0.5, "higher", REFUTED),
    (-1.0, 3.0, "higher", UNCLEAR),
    (-3.0, 1.0, "lower", UNCLEAR),
    (0.0, 2.0, "higher", UNCLEAR),      # touching 0 is containing 0
    (0.5, 2.0, "either", "differs"),
    (-0.5, 2.0, "either", UNCLEAR),
])
def test_arm_verdict(low, high, expect, verdict):
    assert arm_verdict(low, high, expect) == verdict


@pytest.mark.parametrize("verdicts, rule, expected", [
    ([SUPPORTED, SUPPORTED], "all", SUPPORTED),
    ([REFUTED], "all", REFUTED),
    ([SUPPORTED, REFUTED], "all", "mixed"),
    ([SUPPORTED, UNCLEAR], "all", "partly supported"),
    ([REFUTED, UNCLEAR, UNCLEAR], "all", "partly refuted"),
    ([SUPPORTED, UNCLEAR], "any", SUPPORTED),
    ([UNCLEAR, UNCLEAR], "all", UNCLEAR),
    ([SUPPORTED, PENDING], "all", SUPPORTED),   # pending arms are left out
    ([PENDING, PENDING], "all", PENDING),
    ([], "all", PENDING),
])
def test_claim_verdict(verdicts, rule, expected):
    assert claim_verdict(verdicts, rule) == expected


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


def test_user_bootstrap_resamples_whole_users():
    # user 0: ten samples all +1, user 1: ten samples all 0. Resampling users gives a mean of
    # 0 (both draws user 1), 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the 95 % interval is
    # [0, 1]; resampling the 20 samples one by one would give a narrow interval around 0.5.
    differences = np.repeat([1.0, 0.0], 10)
    users = np.repeat([7, 9], 10)
    assert user_bootstrap(differences, users, replicates=4000) == pytest.approx((0.0, 1.0))


def test_user_bootstrap_of_a_constant_difference_is_that_constant():
    low, high = user_bootstrap(np.full(30, 2.5), np.arange(30) % 4)
    assert (low, high) == pytest.approx((2.5, 2.5))


def test_user_bootstrap_is_reproducible():
    rng = np.random.default_rng(1)
    differences, users = rng.normal(size=200), rng.integers(0, 12, 200)
    assert user_bootstrap(differences, users) == user_bootstrap(differences, users)
