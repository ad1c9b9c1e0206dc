from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nextloc.training.metrics import MetricAccumulator, ranks

C = 12  # enough classes for a target ranked below 10


def descending() -> list[float]:
    """Class 0 scores highest, class 11 lowest, no ties: the target's rank is its index + 1."""
    return [-float(j) for j in range(C)]


def row(updates: dict[int, float], base: float = 0.0) -> list[float]:
    values = [base] * C
    for index, value in updates.items():
        values[index] = value
    return values


# Each case: (scores over 12 classes, target, rank worked out by hand).
CASES = [
    (row({7: 0.9}, base=0.1), 7, 1),          # a clear winner
    (row({}), 3, 4),                          # all tied: classes 0, 1, 2 rank first
    ([float(j) for j in range(C)], 0, 12),    # lowest score of all
    (row({9: 2.0, 2: 1.0, 5: 1.0}), 5, 3),    # class 9 higher; class 2 tied and lower index
    (row({2: 1.0, 5: 1.0}), 2, 1),            # the tied lower index itself ranks first
    (descending(), 4, 5),
    (descending(), 5, 6),
    (descending(), 9, 10),
    (descending(), 10, 11),
]
SCORES = torch.tensor([case[0] for case in CASES])
TARGET = torch.tensor([case[1] for case in CASES])
HAND_RANKS = [case[2] for case in CASES]  # 1, 4, 12, 3, 1, 5, 6, 10, 11


def test_ranks_match_the_hand_computed_ones():
    assert ranks(SCORES, TARGET).tolist() == HAND_RANKS


def test_rank_one_agrees_with_argmax_under_ties():
    # The tie rule is chosen so that Acc@1 equals the accuracy of argmax.
    top1 = SCORES.argmax(1)
    assert ((ranks(SCORES, TARGET) == 1) == (top1 == TARGET)).all()


def test_ranking_metrics_against_hand_computation():
    accumulator = MetricAccumulator(C)
    accumulator.update(SCORES, TARGET)
    result = accumulator.compute()

    n = 9
    assert result["n"] == n
    assert result["acc1"] == 2 / n                       # ranks 1, 1
    assert result["acc5"] == 5 / n                       # ranks 1, 4, 3, 1, 5
    assert result["acc10"] == 7 / n                      # ... and 6, 10; not 12 or 11
    mrr = (1 + 1 / 4 + 1 / 12 + 1 / 3 + 1 + 1 / 5 + 1 / 6 + 1 / 10 + 1 / 11) / n
    assert result["mrr"] == pytest.approx(mrr, rel=1e-12)
    # 1 / log2(rank + 1) up to rank 10; ranks 12 and 11 count zero.
    ndcg = (1 + 1 / math.log2(5) + 0 + 1 / math.log2(4) + 1 + 1 / math.log2(6)
            + 1 / math.log2(7) + 1 / math.log2(11) + 0) / n
    assert result["ndcg10"] == pytest.approx(ndcg, rel=1e-12)


def test_two_batches_accumulate_like_one():
    whole, parts = MetricAccumulator(C), MetricAccumulator(C)
    whole.update(SCORES, TARGET)
    returned = [parts.update(SCORES[:4], TARGET[:4]), parts.update(SCORES[4:], TARGET[4:])]

    assert torch.cat(returned).tolist() == HAND_RANKS  # update hands back the batch's ranks
    expected, actual = whole.compute(), parts.compute()
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key] == pytest.approx(expected[key], rel=1e-12), key


# targets 0 0 1 1 1 2; top-1 predictions 0 1 1 3 0 2 (class 3 is predicted, never true)
F1_TARGET = [0, 0, 1, 1, 1, 2]
F1_PREDICTED = [0, 1, 1, 3, 0, 2]
# class 0: tp 1, predicted 2, support 2 -> 2*1/(2+2) = 1/2
# class 1: tp 1, predicted 2, support 3 -> 2*1/(2+3) = 2/5
# class 2: tp 1, predicted 1, support 1 -> 1
# class 3: support 0, weight 0
F1_BY_HAND = (2 * (1 / 2) + 3 * (2 / 5) + 1 * 1) / 6  # = 8/15


def one_hot_scores(predicted: list[int], num_classes: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predicted), num_classes).float()


def test_weighted_f1_against_hand_computation():
    accumulator = MetricAccumulator(4)
    accumulator.update(one_hot_scores(F1_PREDICTED), torch.tensor(F1_TARGET))
    assert accumulator.compute()["f1"] == pytest.approx(F1_BY_HAND, rel=1e-12)


def test_weighted_f1_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, 200)
    scores = torch.from_numpy(rng.random((200, 8))).float()
    scores[np.arange(200)[::3], target[::3]] += 1.0  # about a third right, the rest arbitrary

    accumulator = MetricAccumulator(8)
    accumulator.update(scores[:70], torch.from_numpy(target[:70]))
    accumulator.update(scores[70:], torch.from_numpy(target[70:]))

    expected = metrics.f1_score(target, scores.argmax(1).numpy(), average="weighted")
    assert accumulator.compute()["f1"] == pytest.approx(expected, rel=1e-12)
    assert metrics.f1_score(F1_TARGET, F1_PREDICTED, average="weighted") == pytest.approx(
        F1_BY_HAND, rel=1e-12)


def test_compute_without_samples_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        MetricAccumulator(5).compute()


@pytest.mark.parametrize("scores, target", [
    (torch.zeros(3, 5), torch.zeros(4, dtype=torch.long)),   # batch sizes differ
    (torch.zeros(5), torch.zeros(5, dtype=torch.long)),      # scores not [B, C]
])
def test_mismatched_shapes_are_an_error(scores, target):
    accumulator = MetricAccumulator(5)
    with pytest.raises(ValueError, match="scores must be"):
        accumulator.update(scores, target)
    assert accumulator.total == 0  # nothing half-counted


# --- NaN scores (issue 9, defect 1): no prediction, never a perfect one ------------------------

NAN = float("nan")


def test_an_all_nan_batch_scores_zero_not_one():
    accumulator = MetricAccumulator(C)
    accumulator.update(torch.full((4, C), NAN), torch.tensor([0, 3, 5, 11]))
    result = accumulator.compute()
    assert result["acc1"] == result["acc5"] == result["acc10"] == 0.0
    assert result["mrr"] == pytest.approx(1 / C)  # every target ranks last
    assert result["ndcg10"] == 0.0 and result["f1"] == 0.0


def test_a_nan_score_ranks_below_every_number():
    scores = torch.tensor([row({0: NAN, 1: NAN}, base=-1e9),        # NaNs of other classes
                           row({4: NAN}),                            # the target's own NaN
                           row({0: NAN, 6: float("-inf")}, base=0.0)])
    target = torch.tensor([2, 4, 6])
    # row 0: the NaN classes 0 and 1 do not rank above the target; row 1: a NaN target ranks
    # last; row 2: -inf outranks NaN, so only the ten 0.0 scores rank above the target
    assert ranks(scores, target).tolist() == [1, C, C - 1]


def test_top1_skips_nan_scores():
    from nextloc.training.metrics import top1

    scores = torch.tensor([row({0: NAN, 3: 1.0}), row({}, base=NAN)])
    assert top1(scores).tolist() == [3, 0]


# --- known places: Acc@1 without the unseen-location class (class 1) -------------------------

def test_known_place_accuracy_and_unseen_share_against_hand_computation():
    from nextloc.training.metrics import known_places

    # 8 targets, 3 of them the unseen class (1); the 5 known ones are right at ranks 1, 1, 1:
    # acc1_known = 3 / 5; unseen share = 3 / 8; the unseen ones are right once (rank 1).
    target = [1, 5, 1, 7, 9, 1, 5, 4]
    rank = [1, 1, 3, 1, 2, 4, 1, 10]
    result = known_places(target, rank)
    assert result == {"acc1_known": 3 / 5, "unseen_share": 3 / 8}
    # Acc@1 (4 of 8) = (1 - 3/8) * 3/5 + 3/8 * 1/3
    assert (1 - 3 / 8) * 3 / 5 + 3 / 8 * (1 / 3) == pytest.approx(4 / 8)


def test_known_place_accuracy_without_known_targets_is_nan():
    from nextloc.training.metrics import known_places

    result = known_places([1, 1], [1, 2])
    assert math.isnan(result["acc1_known"]) and result["unseen_share"] == 1.0
