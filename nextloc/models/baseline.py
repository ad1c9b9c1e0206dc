"""The seed report's "model_v2": a plain transformer encoder over the history.

Each step is the sum of location, user, hour-of-day and weekday embeddings plus a sinusoidal
position code; the encoder output at the last real step is classified over all locations.
d=88, 4 layers, 4 heads, feed-forward 192, dropout 0.15: 480,059 parameters with 1,187 classes
(the seed reports ~481K).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from nextloc.models.base import NextLocationModel, register


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


def pre_norm_encoder(dim: int, layers: int, heads: int, feedforward: int,
                     dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, feedforward, dropout, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def encode_causally(encoder: nn.TransformerEncoder, steps: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    """Run ``encoder`` over right-padded [B, L, D] steps, each step seeing only earlier ones."""
    width = steps.shape[1]
    causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=steps.device), 1)
    return encoder(steps, mask=causal, src_key_padding_mask=~mask)


def last_step(sequence: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """The vector at each sample's last real step of a right-padded [B, L, D] sequence."""
    return sequence[torch.arange(len(length), device=sequence.device), length - 1]


@register("baseline")
class BaselineTransformer(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 88, layers: int = 4,
                 heads: int = 4, feedforward: int = 192, dropout: float = 0.15):
        super().__init__(num_locations, num_users)
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)
        self.hour = nn.Embedding(24, dim)
        self.weekday = nn.Embedding(7, dim)
        self.register_buffer("positions", sinusoidal_positions(512, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = pre_norm_encoder(dim, layers, heads, feedforward, dropout)
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_locations)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, dim] summary of the history (the last real step of the encoder output)."""
        steps = (self.location(batch["location"]) + self.user(batch["user"])[:, None]
                 + self.hour(batch["start_min"] // 60) + self.weekday(batch["weekday"])
                 + self.positions[: batch["location"].shape[1]])
        hidden = encode_causally(self.encoder, self.dropout(steps), batch["mask"])
        return self.norm(last_step(hidden, batch["length"]))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.log_softmax(self.classifier(self.dropout(self.encode(batch))), dim=-1)
