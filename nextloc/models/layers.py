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


def cheap_dropout(values: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with its mask drawn as ``uniform >= p``: the same Bernoulli(1 - p) mask and
    scaling as ``nn.functional.dropout``, from another random stream, and on the CPU about twice
    as fast (torch's ``bernoulli_`` costs more than the matrix products of a small model)."""
    if not training or p == 0:
        return values
    # One uniform draw turned in place into the scaled mask: no bool tensor, no dtype cast.
    return values * torch.rand_like(values).ge_(p).mul_(1.0 / (1.0 - p))


class CheapDropout(nn.Dropout):
    """``nn.Dropout`` through :func:`cheap_dropout` (no parameters: checkpoints are unchanged)."""

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return cheap_dropout(values, self.p, self.training)


def _self_attention(layer: nn.TransformerEncoderLayer, values: torch.Tensor,
                    padding: torch.Tensor) -> torch.Tensor:
    attention = layer.self_attn
    batch, width, dim = values.shape
    heads = attention.num_heads
    q, k, v = (nn.functional.linear(values, attention.in_proj_weight, attention.in_proj_bias)
               .view(batch, width, 3, heads, dim // heads).permute(2, 0, 3, 1, 4))
    weights = torch.softmax(q @ k.transpose(-1, -2) * (heads / dim) ** 0.5 + padding, dim=-1)
    weights = cheap_dropout(weights, attention.dropout, True)
    mixed = (weights @ v).transpose(1, 2).reshape(batch, width, dim)
    return attention.out_proj(mixed)


def run_encoder(encoder: nn.TransformerEncoder, steps: torch.Tensor,
                        padding_mask: torch.Tensor) -> torch.Tensor:
    """``encoder(steps, src_key_padding_mask=padding_mask)`` of a :func:`pre_norm_encoder` in
    training mode, written out: the same parameters and the same function, with its dropout
    masks from :func:`cheap_dropout` and none of nn.MultiheadAttention's per-call overhead
    (together about 1.6x faster on one CPU thread). In eval mode, and for other encoders, torch's
    own (fused) path runs."""
    first = encoder.layers[0]
    if not (encoder.training and first.norm_first and first.self_attn.batch_first
            and first.activation_relu_or_gelu == 1 and encoder.norm is None):
        return encoder(steps, src_key_padding_mask=padding_mask)
    padding = torch.zeros(padding_mask.shape, dtype=steps.dtype, device=steps.device)
    padding = padding.masked_fill(padding_mask, float("-inf"))[:, None, None, :]
    for layer in encoder.layers:
        attended = _self_attention(layer, layer.norm1(steps), padding)
        steps = steps + cheap_dropout(attended, layer.dropout1.p, True)
        hidden = cheap_dropout(torch.relu(layer.linear1(layer.norm2(steps))), layer.dropout.p,
                               True)
        steps = steps + cheap_dropout(layer.linear2(hidden), layer.dropout2.p, True)
    return steps
