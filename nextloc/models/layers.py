"""Building blocks shared by several models (no model is registered here): position codes, the
pre-norm transformer encoder run causally over right-padded histories, the last real step of a
sequence, and log-scale bucketing of minutes or counts."""
from __future__ import annotations

import math

import numpy as np
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


def keep_masks(shapes: list[tuple[int, ...]], p: float,
               like: torch.Tensor) -> list[torch.Tensor]:
    """Scaled dropout masks of several ``shapes`` (each element 0, or 1 / (1 - p) with
    probability 1 - p), all from one draw of random 16-bit integers.

    On the CPU, random numbers are the dearest part of a small model's dropout. One 64-bit word
    gives four masks, against one 32-bit float per mask for ``torch.rand``; the words come from
    numpy's PCG64DXSM generator, seeded from torch's (``torch.manual_seed`` fixes the masks),
    nearly twice as fast as torch's CPU generator, and numpy compares and scales them in one
    pass (on a GPU the masks are then copied over). The drop rate is p rounded to a multiple of
    1/65536 (0.1 becomes 0.100006), and the scale follows the rounded rate, so that the expected
    value of every masked element is unchanged.
    """
    sizes = [math.prod(shape) for shape in shapes]
    total = sum(sizes)
    seed = int(torch.randint(2 ** 62, (), dtype=torch.int64).item())
    lanes = np.random.PCG64DXSM(seed).random_raw((total + 3) // 4).view(np.int16)[:total]
    dropped = round(p * 65536)
    scale = np.float32(65536 / (65536 - dropped))
    masks = np.multiply(lanes >= dropped - 32768, scale, dtype=np.float32)
    masks = torch.from_numpy(masks).to(device=like.device, dtype=like.dtype)
    return [mask.view(shape) for mask, shape in zip(masks.split(sizes), shapes)]


def _self_attention(layer: nn.TransformerEncoderLayer, values: torch.Tensor,
                    padding: torch.Tensor, weight_mask: torch.Tensor) -> torch.Tensor:
    """Multi-head self-attention on [B, L, D] ``values``, with its heads folded into the batch
    dimension of batched matrix products; ``padding`` is the [B * heads, 1, K] additive key
    mask (0 or -inf; K >= L, see :func:`attention_keys`) and ``weight_mask`` the attention
    weights' dropout mask."""
    attention = layer.self_attn
    batch, width, dim = values.shape
    heads, keys = attention.num_heads, padding.shape[-1]
    projected = (nn.functional.linear(values, attention.in_proj_weight, attention.in_proj_bias)
                 .view(batch, width, 3, heads, dim // heads).permute(2, 0, 3, 1, 4))
    if keys > width:  # the extra keys are zeros, masked out by ``padding``
        projected = nn.functional.pad(projected, (0, 0, 0, keys - width))
    q, k, v = projected.reshape(3, batch * heads, keys, dim // heads)
    scores = torch.baddbmm(padding, q[:, :width], k.transpose(1, 2), alpha=(heads / dim) ** 0.5)
    weights = torch.softmax(scores, dim=-1) * weight_mask.view(batch * heads, width, keys)
    mixed = torch.bmm(weights, v).view(batch, heads, width, -1).transpose(1, 2)
    return attention.out_proj(mixed.reshape(batch, width, dim))


def attention_keys(width: int) -> int:
    """How many keys the attention of :func:`run_encoder` scores for ``width`` steps: at least
    16, because torch's CPU softmax handles rows of fewer than 16 numbers one number at a time,
    some 15x slower per number than a row of 16 (half the training batches of the pointer model
    are that short); the padded keys get weight 0."""
    return max(width, 16)


def run_encoder(encoder: nn.TransformerEncoder, steps: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
    """``encoder(steps, src_key_padding_mask=padding_mask)`` of a :func:`pre_norm_encoder` in
    training mode, written out: the same parameters and the same function, with all its dropout
    masks from one :func:`keep_masks` draw (one drop rate for all of them, as in the layers this
    module builds) and none of nn.MultiheadAttention's per-call overhead (``nextloc benchmark
    speed`` measures the gain). In eval mode, and for other encoders, torch's
    own (fused) path runs."""
    first = encoder.layers[0]
    if not (encoder.training and first.norm_first and first.self_attn.batch_first
            and first.activation_relu_or_gelu == 1 and encoder.norm is None
            and all(layer.dropout.p == first.dropout.p == layer.self_attn.dropout
                    == layer.dropout1.p == layer.dropout2.p for layer in encoder.layers)):
        return encoder(steps, src_key_padding_mask=padding_mask)
    batch, width, dim = steps.shape
    heads = first.self_attn.num_heads
    keys = attention_keys(width)
    shapes = [(batch, heads, width, keys), (batch, width, dim),
              (batch, width, first.linear1.out_features), (batch, width, dim)]
    masks = keep_masks(shapes * len(encoder.layers), first.dropout.p, steps)
    padding_mask = nn.functional.pad(padding_mask, (0, keys - width), value=True)
    padding = torch.zeros(padding_mask.shape, dtype=steps.dtype, device=steps.device)
    padding = (padding.masked_fill(padding_mask, float("-inf"))[:, None, None, :]
               .expand(batch, heads, 1, keys).reshape(batch * heads, 1, keys))
    for number, layer in enumerate(encoder.layers):
        weight_mask, attended_mask, hidden_mask, out_mask = masks[4 * number:4 * number + 4]
        attended = _self_attention(layer, layer.norm1(steps), padding, weight_mask)
        steps = torch.addcmul(steps, attended, attended_mask)
        hidden = torch.relu(layer.linear1(layer.norm2(steps))) * hidden_mask
        steps = torch.addcmul(steps, layer.linear2(hidden), out_mask)
    return steps
