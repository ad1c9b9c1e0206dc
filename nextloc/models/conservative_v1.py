"""The prior report's "Conservative_v1": the baseline transformer trained with mixup and focal
loss (there: 481K parameters, 34.32 % test Acc@1 against the baseline's 37.95 %).

What the prior report describes: "Baseline + Mixup + Focal", same parameter count as the baseline.
Interpretation made here:

- The network is exactly :class:`~nextloc.models.baseline.BaselineTransformer` (480,059
  parameters with 1,187 locations and 45 users) and ``forward`` is the baseline's, so
  evaluation is unchanged; only ``training_loss`` differs.
- Histories are sequences of location ids, which cannot be interpolated, so mixup is applied
  to the history summaries (the ``encode`` output, i.e. "manifold" mixup at the last layer):
  each batch is paired with a random permutation of itself, lambda ~ Beta(alpha, alpha) is
  drawn once per batch (``mixup_alpha=0.2``), the mixed summary is classified, and
  loss = lambda * focal(y_a) + (1 - lambda) * focal(y_b).
- Focal loss with ``focal_gamma=2``, on the label-smoothed cross-entropy
  (:func:`nextloc.models.losses.focal_nll`). ``mixup_alpha=0`` switches mixup off and
  ``focal_gamma=0`` switches the focal factor off, for ablations.
"""
from __future__ import annotations

import torch

from nextloc.models.base import register
from nextloc.models.baseline import BaselineTransformer
from nextloc.models.losses import focal_nll


@register("conservative_v1")
class ConservativeV1(BaselineTransformer):
    def __init__(self, num_locations: int, num_users: int, dim: int = 88, layers: int = 4,
                 heads: int = 4, feedforward: int = 192, dropout: float = 0.15,
                 mixup_alpha: float = 0.2, focal_gamma: float = 2.0):
        super().__init__(num_locations, num_users, dim=dim, layers=layers, heads=heads,
                         feedforward=feedforward, dropout=dropout)
        if mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {mixup_alpha}")
        self.mixup_alpha = mixup_alpha
        self.focal_gamma = focal_gamma

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        summary = self.encode(batch)
        target = batch["target"]
        if self.mixup_alpha == 0 or len(target) < 2:
            log_probs = torch.log_softmax(self.classifier(self.dropout(summary)), dim=-1)
            return focal_nll(log_probs, target, self.focal_gamma, self.label_smoothing)
        alpha = torch.tensor(float(self.mixup_alpha))
        lam = torch.distributions.Beta(alpha, alpha).sample().item()
        partner = torch.randperm(len(target), device=summary.device)
        mixed = lam * summary + (1 - lam) * summary[partner]
        log_probs = torch.log_softmax(self.classifier(self.dropout(mixed)), dim=-1)
        loss_a = focal_nll(log_probs, target, self.focal_gamma, self.label_smoothing)
        loss_b = focal_nll(log_probs, target[partner], self.focal_gamma, self.label_smoothing)
        return lam * loss_a + (1 - lam) * loss_b
