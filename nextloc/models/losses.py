"""Losses and probability averaging shared by several models (no model is registered here).

``smoothed_nll`` is cross-entropy with label smoothing written on log-probabilities, so that it
also applies to mixtures (pointer, ensembles). ``focal_nll`` is the focal loss of Lin et al.
(2017), FL = -(1 - p_t)^gamma log p_t: the per-sample smoothed cross-entropy multiplied by the
focal factor (1 - p_t)^gamma; with ``gamma=0`` it is exactly ``smoothed_nll``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def smoothed_nll(log_probs: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy with label smoothing, on log-probabilities (works for mixtures too)."""
    nll = F.nll_loss(log_probs, target)
    if smoothing == 0:
        return nll
    return (1 - smoothing) * nll - smoothing * log_probs.mean(dim=1).mean()


def average_probabilities(log_probs: list[torch.Tensor]) -> torch.Tensor:
    """log of the mean of several models' probabilities, from their log-probabilities."""
    return torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(log_probs))


def kl_divergence(log_probs: torch.Tensor, target_log_probs: torch.Tensor) -> torch.Tensor:
    """KL(target || model), averaged over the batch, from log-probabilities [B, C]. Classes the
    target rules out (log-probability -inf, e.g. padding) add nothing, not NaN."""
    target = target_log_probs.exp()
    terms = target * (target_log_probs - log_probs)
    return torch.where(target > 0, terms, 0.0).sum(dim=1).mean()


def focal_nll(log_probs: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
              smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Focal loss on log-probabilities [B, C] and class ids [B], with label smoothing.

    ``reduction="none"`` returns the per-sample losses [B] (used by mixup, which mixes two
    targets per sample)."""
    if gamma == 0 and reduction == "mean":
        return smoothed_nll(log_probs, target, smoothing)
    target_log_prob = log_probs.gather(1, target[:, None])[:, 0]
    per_sample = -target_log_prob
    if smoothing:
        per_sample = (1 - smoothing) * per_sample - smoothing * log_probs.mean(dim=1)
    if gamma:
        per_sample = (1 - target_log_prob.exp()).clamp(min=0).pow(gamma) * per_sample
    if reduction == "none":
        return per_sample
    if reduction != "mean":
        raise ValueError(f"unknown reduction '{reduction}'")
    return per_sample.mean()
