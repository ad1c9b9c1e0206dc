"""A bias on the generation scores from the user's long-term counts (:mod:`nextloc.data.long_term`):
each candidate place of a sample gets a learned score for its bucket of visits and its bucket of
transitions from the current place, both read from the history summary h, since how much the
long-term habit matters depends on the situation. The weights start at zero, so a model with
this option starts exactly where the plain model starts. Places outside a sample's candidates
get no bias."""
from __future__ import annotations

import torch
from torch import nn

from nextloc.core.errors import DataError
from nextloc.models.layers import log_bucket

COUNT_BUCKETS = 16  # 0, 1, 2-3, 4-7, ... visits or transitions


class LongTermBias(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.visits = nn.Linear(dim, COUNT_BUCKETS)
        self.transitions = nn.Linear(dim, COUNT_BUCKETS)
        for layer in (self.visits, self.transitions):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, summary: torch.Tensor, batch: dict[str, torch.Tensor],
                num_locations: int) -> torch.Tensor:
        """[B, N] bias: each candidate's visit and transition bucket scores, 0 elsewhere."""
        if "long_term" not in batch:
            raise DataError("the long_term option needs samples with long-term counts; build the "
                            "dataset with nextloc.data.split (load_dataset / build_dataset).")
        place, visits, transitions = batch["long_term"].unbind(-1)
        score = (self.visits(summary).gather(1, log_bucket(visits, COUNT_BUCKETS))
                 + self.transitions(summary).gather(1, log_bucket(transitions, COUNT_BUCKETS)))
        bias = torch.zeros(len(place), num_locations, device=summary.device)
        return bias.scatter_add_(1, place, score * (place > 0))
