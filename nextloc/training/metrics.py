"""Count-based ranking metrics, accumulated over batches and divided once at the end.

Ranks break ties by class index: among classes with equal scores the lower index ranks first,
the same choice ``torch.argmax`` makes, so Acc@1 equals the accuracy of :func:`top1`.

A NaN score is no prediction: it ranks below every number, and a target whose own score is NaN
ranks last (rank = number of classes), so a model that outputs NaN scores zero, never one.
"""
from __future__ import annotations

import numpy as np
import torch

from nextloc.data.split import UNSEEN

TOP_K = (1, 5, 10)


def ranks(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-based rank of each target under ``scores`` [B, C] (higher is better)."""
    target_score = scores.gather(1, target[:, None])
    higher = (scores > target_score).sum(1)  # comparisons with NaN are false
    classes = torch.arange(scores.shape[1], device=scores.device)
    tied_before = ((scores == target_score) & (classes[None, :] < target[:, None])).sum(1)
    rank = higher + tied_before + 1
    return torch.where(target_score[:, 0].isnan(), torch.full_like(rank, scores.shape[1]), rank)


def top1(scores: torch.Tensor) -> torch.Tensor:
    """The predicted class of each row: the argmax, with NaN scores counted as -inf."""
    return scores.masked_fill(scores.isnan(), float("-inf")).argmax(1)


class MetricAccumulator:
    """Sums per-batch counts; :meth:`compute` turns them into fractions."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.total = 0
        self.correct_at = {k: 0 for k in TOP_K}
        self.reciprocal_rank = 0.0
        self.ndcg10 = 0.0
        self.true_positive = np.zeros(num_classes, dtype=np.int64)
        self.predicted = np.zeros(num_classes, dtype=np.int64)
        self.support = np.zeros(num_classes, dtype=np.int64)

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Add one batch; returns the batch's ranks (for per-sample analysis)."""
        if scores.ndim != 2 or scores.shape[0] != target.shape[0]:
            raise ValueError(f"scores must be [B, C] matching target [B]; got "
                             f"{tuple(scores.shape)} and {tuple(target.shape)}")
        rank = ranks(scores.detach().float(), target).cpu()
        self.total += len(rank)
        for k in TOP_K:
            self.correct_at[k] += int((rank <= k).sum())
        self.reciprocal_rank += float((1.0 / rank.double()).sum())
        self.ndcg10 += float(torch.where(rank <= 10, 1.0 / torch.log2(rank.double() + 1),
                                         torch.zeros((), dtype=torch.double)).sum())
        predicted = top1(scores.detach()).cpu().numpy()
        truth = target.cpu().numpy()
        np.add.at(self.predicted, predicted, 1)
        np.add.at(self.support, truth, 1)
        np.add.at(self.true_positive, truth[rank.numpy() == 1], 1)
        return rank

    def compute(self) -> dict[str, float]:
        if self.total == 0:
            raise ValueError("no samples were accumulated")
        result = {f"acc{k}": self.correct_at[k] / self.total for k in TOP_K}
        result["mrr"] = self.reciprocal_rank / self.total
        result["ndcg10"] = self.ndcg10 / self.total
        result["f1"] = self._weighted_f1()
        result["n"] = self.total
        return result

    def _weighted_f1(self) -> float:
        """Per-class F1 of the top-1 prediction, averaged with the classes' support as weights."""
        denominator = self.predicted + self.support
        f1 = np.divide(2 * self.true_positive, denominator, out=np.zeros(self.num_classes),
                       where=denominator > 0)
        return float((f1 * self.support).sum() / self.support.sum())


def known_places(target, rank) -> dict[str, float]:
    """Acc@1 over the targets that are not the unseen-location class (``acc1_known``) and the
    share of targets that are (``unseen_share``), from per-sample targets and ranks (as in a
    run's ``test_predictions.csv.gz``). Acc@1 = (1 - share) * acc1_known + share * (Acc@1 on
    the unseen class). With no known target ``acc1_known`` is NaN (there is nothing to score)."""
    target, correct = np.asarray(target), np.asarray(rank) == 1
    unseen = target == UNSEEN
    return {"acc1_known": float(correct[~unseen].mean()) if (~unseen).any() else float("nan"),
            "unseen_share": float(unseen.mean()) if len(target) else float("nan")}
