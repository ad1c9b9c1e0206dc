"""The prior report's "model_v2": a plain transformer encoder over the history.

Each step is the sum of location, user, hour-of-day and weekday embeddings plus a sinusoidal
position code; the encoder output at the last real step is classified over all locations.
d=88, 4 layers, 4 heads, feed-forward 192, dropout 0.15: 480,059 parameters with 1,187 classes
(the prior report gives ~481K).

Geographic options (see :mod:`nextloc.models.geography`), off by default: ``distance`` adds a
learned bias of each candidate's distance bucket from the current place to the logits (+1,424
parameters); ``clusters: K`` adds the embedding of each step's location cluster to the step
(+(K + 2) * 88: 489,035 with K = 100, 497,835 with K = 200).
"""
from __future__ import annotations

import torch
from torch import nn

from nextloc.models.base import NextLocationModel, register
from nextloc.models.geography import add_geography, cluster_embedding, distance_logits
from nextloc.models.layers import add_encoder_trunk, encode_with_trunk


@register("baseline")
class BaselineTransformer(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 88, layers: int = 4,
                 heads: int = 4, feedforward: int = 192, dropout: float = 0.15,
                 distance: bool = False, clusters: int = 0):
        super().__init__(num_locations, num_users)
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)
        self.hour = nn.Embedding(24, dim)
        self.weekday = nn.Embedding(7, dim)
        add_encoder_trunk(self, num_locations, dim, layers, heads, feedforward, dropout)
        add_geography(self, num_locations, dim, distance, clusters)  # after all the others

    def fit_statistics(self, train) -> None:
        if self.geography is not None:
            self.geography.fit(train, "baseline")

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, dim] summary of the history (the last real step of the encoder output)."""
        steps = (self.location(batch["location"]) + self.user(batch["user"])[:, None]
                 + self.hour(batch["start_min"] // 60) + self.weekday(batch["weekday"]))
        if self.cluster is not None:
            steps = steps + cluster_embedding(self, batch["location"])
        return encode_with_trunk(self, steps, batch)[1]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        summary = self.dropout(self.encode(batch))
        logits = self.classifier(summary)
        if self.distance_bias is not None:
            logits = logits + distance_logits(self, summary, batch)
        return torch.log_softmax(logits, dim=-1)
