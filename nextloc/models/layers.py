"""Building blocks shared by several models (no model is registered here): position codes, the
pre-norm transformer encoder run causally over right-padded histories, the last real step of a
sequence, and log-scale bucketing of minutes or counts."""
from __future__ import annotations

import math

import torch
from torch import nn


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


def log_bucket(values: torch.Tensor, buckets: int) -> torch.Tensor:
    """0, 1, 2-3, 4-7, ... -> 0, 1, 2, 3, ...; negative values count as 0, capped at
    ``buckets - 1``."""
    return torch.floor(torch.log2(values.clamp(min=0).float() + 1)).long().clamp(max=buckets - 1)


def add_encoder_trunk(model: nn.Module, num_locations: int, dim: int, layers: int, heads: int,
                      feedforward: int, dropout: float) -> None:
    """Give ``model`` the prior report's transformer trunk as attributes ``positions, dropout,
    encoder, norm, classifier``. Attributes, not a submodule, keep the checkpoint names of the
    models that share it, and creating them in this order keeps their seeded initialisation."""
    model.register_buffer("positions", sinusoidal_positions(512, dim), persistent=False)
    model.dropout = nn.Dropout(dropout)
    model.encoder = pre_norm_encoder(dim, layers, heads, feedforward, dropout)
    model.norm = nn.LayerNorm(dim)
    model.classifier = nn.Linear(dim, num_locations)


def encode_with_trunk(model: nn.Module, steps: torch.Tensor,
                      batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Add position codes to the [B, L, D] step embeddings, run the trunk's encoder causally and
    return (encoder outputs [B, L, D], normalised last real step [B, D])."""
    steps = steps + model.positions[: steps.shape[1]]
    hidden = encode_causally(model.encoder, model.dropout(steps), batch["mask"])
    return hidden, model.norm(last_step(hidden, batch["length"]))
