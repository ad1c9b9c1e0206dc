"""Losses shared by several models (no model is registered here).

``focal_nll`` is the focal loss of Lin et al. (2017), FL = -(1 - p_t)^gamma log p_t, written on
log-probabilities and combined with label smoothing the same way as
:func:`nextloc.models.base.smoothed_nll`: the per-sample smoothed cross-entropy is multiplied by
the focal factor (1 - p_t)^gamma. With ``gamma=0`` it is exactly ``smoothed_nll``.
"""
from __future__ import annotations

import torch

from nextloc.models.base import smoothed_nll


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
