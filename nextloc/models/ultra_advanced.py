"""The prior report's "Ultra-Advanced" kitchen-sink model (there: 450K parameters, 17.22 %
test Acc@1, "training collapsed early, best at epoch 2"), with each of its seven components behind a
boolean option (default True) so that an ablation can remove one at a time.

The prior report names the components and their intent only; the interpretation made here:

1. ``fourier``: learnable Fourier features of time. Three groups of ``fourier_per_scale``
   learnable frequencies, initialised at the harmonics of the hour (periods 60..480 min, on the
   minute of day), of the day (1440/k min, on the minute of day) and of the week (10080/k min,
   on the minute of week), each with a learnable phase; sin/cos -> linear -> dim.
   Off: the baseline's hour-of-day and weekday embedding tables.
2. ``rotary_time``: the location embedding's dimension pairs are rotated by angle
   2*pi*omega_j*minute_of_day/1440, omega_j learnable (initialised at harmonics 1..4). The prior
   report calls it "rotational *position* encoding", so it replaces the sinusoidal position code.
   Off: the baseline's sinusoidal positions (and no rotation).
3. ``time_interval``: the gap to the previous stay, (days_ago[j-1] - days_ago[j]) * 1440 +
   start_min[j] - start_min[j-1] minutes (day wrap-around handled by the day difference; 0 for
   the first step), bucketed on a log2 scale and embedded. Off: no gap input.
4. ``soft_clusters``: every location softly belongs to 40 clusters, assignment
   softmax(U_l V) with a low-rank factorisation (U: locations x ``cluster_rank``, V: rank x 40);
   each step adds the assignment-weighted cluster embedding to its location embedding.
5. ``hybrid_lstm``: an LSTM over the same step inputs beside the transformer; the two sequences
   are combined per step by a learned sigmoid gate g = sigmoid(W [h_tr; h_lstm]).
   Off: the transformer alone.
6. ``multiscale``: attention pooling over the last 5, the last 10 and all steps (one
   query/key projection each, queried from the last step), fused by softmax-normalised
   learned weights. Off: the baseline's last-step summary.
7. ``hierarchical_loss``: a cluster head predicts p(cluster | history); the location scores
   receive the cluster prior log(sum_c p(c) A[l, c]) (the prior report's "cluster prior"), and
   the loss is the label-smoothed location CE + ``aux_weight`` * cross-entropy of the cluster head
   against the soft target A[target] (the target's current assignment, detached so the
   assignment cannot trivially collapse to make the auxiliary target easy). It needs the
   clusters: with ``soft_clusters=False`` it is ignored (``self.use_hierarchy`` is False), so a
   one-component ablation of ``soft_clusters`` runs without naming both. Off: plain CE.

Width and depth (dim 80, 2 layers, 4 heads, feed-forward 208) are chosen so that the full model
has about the prior report's 450K parameters (449,526 with 1,187 locations and 45 users).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nextloc.models.base import NextLocationModel, register
from nextloc.models.layers import (encode_causally, last_step, log_bucket, pre_norm_encoder,
                                   sinusoidal_positions)
from nextloc.models.losses import smoothed_nll

MINUTES_PER_DAY, MINUTES_PER_WEEK = 1440, 10080
SCALES = (5, 10, None)  # multiscale pooling windows in steps; None = the whole history
EPSILON = 1e-9


class FourierTime(nn.Module):
    def __init__(self, dim: int, per_scale: int):
        super().__init__()
        k = torch.arange(1, per_scale + 1, dtype=torch.float32)
        periods = torch.cat([60.0 * k, MINUTES_PER_DAY / k, MINUTES_PER_WEEK / k])
        self.log_frequency = nn.Parameter(torch.log(2 * math.pi / periods))
        self.phase = nn.Parameter(torch.zeros(3 * per_scale))
        self.per_scale = per_scale
        self.project = nn.Linear(6 * per_scale, dim)

    def forward(self, start_min: torch.Tensor, weekday: torch.Tensor) -> torch.Tensor:
        day = start_min.float()[..., None]
        week = (weekday * MINUTES_PER_DAY + start_min).float()[..., None]
        time = torch.cat([day.expand(*day.shape[:-1], 2 * self.per_scale),
                          week.expand(*week.shape[:-1], self.per_scale)], dim=-1)
        angle = time * self.log_frequency.exp() + self.phase
        return self.project(torch.cat([angle.sin(), angle.cos()], dim=-1))


def rotate_pairs(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate dimension pairs (0,1), (2,3), ... of x [..., D] by angle [..., D/2]."""
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = angle.cos(), angle.sin()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


@register("ultra_advanced")
class UltraAdvanced(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 80, layers: int = 2,
                 heads: int = 4, feedforward: int = 208, dropout: float = 0.15,
                 fourier: bool = True, rotary_time: bool = True, time_interval: bool = True,
                 soft_clusters: bool = True, hybrid_lstm: bool = True, multiscale: bool = True,
                 hierarchical_loss: bool = True, clusters: int = 40, cluster_rank: int = 16,
                 fourier_per_scale: int = 8, interval_buckets: int = 16,
                 aux_weight: float = 0.3):
        super().__init__(num_locations, num_users)
        if dim % 2:
            raise ValueError(f"dim must be even for the pair rotations, got {dim}")
        self.options = dict(fourier=fourier, rotary_time=rotary_time, time_interval=time_interval,
                            soft_clusters=soft_clusters, hybrid_lstm=hybrid_lstm,
                            multiscale=multiscale, hierarchical_loss=hierarchical_loss)
        self.use_hierarchy = hierarchical_loss and soft_clusters
        self.interval_buckets, self.aux_weight = interval_buckets, aux_weight
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)
        if fourier:
            self.fourier = FourierTime(dim, fourier_per_scale)
        else:
            self.hour = nn.Embedding(24, dim)
            self.weekday = nn.Embedding(7, dim)
        if rotary_time:
            self.rotation_frequency = nn.Parameter(1.0 + torch.arange(dim // 2).float() % 4)
        else:
            self.register_buffer("positions", sinusoidal_positions(512, dim), persistent=False)
        if time_interval:
            self.interval = nn.Embedding(interval_buckets, dim)
        if soft_clusters:
            self.cluster_factor_location = nn.Embedding(num_locations, cluster_rank)
            self.cluster_factor = nn.Parameter(torch.randn(cluster_rank, clusters) * 0.1)
            self.cluster_embedding = nn.Parameter(torch.randn(clusters, dim) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = pre_norm_encoder(dim, layers, heads, feedforward, dropout)
        if hybrid_lstm:
            self.lstm = nn.LSTM(dim, dim, batch_first=True)
            self.gate = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)
        if multiscale:
            self.scale_query = nn.ModuleList(nn.Linear(dim, dim) for _ in SCALES)
            self.scale_key = nn.ModuleList(nn.Linear(dim, dim) for _ in SCALES)
            self.scale_weight = nn.Parameter(torch.zeros(len(SCALES)))
        self.classifier = nn.Linear(dim, num_locations)
        if self.use_hierarchy:
            self.cluster_head = nn.Linear(dim, clusters)

    def assignment(self, locations: torch.Tensor | None = None) -> torch.Tensor:
        """Soft cluster assignment [..., clusters] of ``locations`` (all locations if None)."""
        factors = (self.cluster_factor_location.weight if locations is None
                   else self.cluster_factor_location(locations))
        return torch.softmax(factors @ self.cluster_factor, dim=-1)

    def step_inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        location, start_min = batch["location"], batch["start_min"]
        loc = self.location(location)
        if self.options["soft_clusters"]:
            loc = loc + self.assignment(location) @ self.cluster_embedding
        if self.options["rotary_time"]:
            angle = (2 * math.pi / MINUTES_PER_DAY) * start_min.float()[..., None]
            steps = rotate_pairs(loc, angle * self.rotation_frequency)
        else:
            steps = loc + self.positions[: location.shape[1]]
        steps = steps + self.user(batch["user"])[:, None]
        if self.options["fourier"]:
            steps = steps + self.fourier(start_min, batch["weekday"])
        else:
            steps = steps + self.hour(start_min // 60) + self.weekday(batch["weekday"])
        if self.options["time_interval"]:
            minute_of_history = -batch["days_ago"] * MINUTES_PER_DAY + start_min
            gap = F.pad(minute_of_history[:, 1:] - minute_of_history[:, :-1], (1, 0))
            steps = steps + self.interval(log_bucket(gap, self.interval_buckets))
        return steps

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, dim] summary of the history."""
        x = self.dropout(self.step_inputs(batch))
        hidden = encode_causally(self.encoder, x, batch["mask"])
        if self.options["hybrid_lstm"]:
            recurrent, _ = self.lstm(x)
            gate = torch.sigmoid(self.gate(torch.cat([hidden, recurrent], dim=-1)))
            hidden = gate * hidden + (1 - gate) * recurrent
        hidden = self.norm(hidden)
        last = last_step(hidden, batch["length"])
        if not self.options["multiscale"]:
            return last
        position = torch.arange(x.shape[1], device=x.device)[None, :]
        length = batch["length"][:, None]
        pooled = []
        for scale, query, key in zip(SCALES, self.scale_query, self.scale_key):
            window = batch["mask"]
            if scale is not None:
                window = window & (position >= length - scale)
            scores = (key(hidden) @ query(last)[:, :, None])[..., 0] / math.sqrt(hidden.shape[-1])
            weights = torch.softmax(scores.masked_fill(~window, float("-inf")), dim=-1)
            pooled.append((weights[..., None] * hidden).sum(dim=1))
        fusion = torch.softmax(self.scale_weight, dim=0)
        return (torch.stack(pooled, dim=-1) * fusion).sum(dim=-1)

    def heads(self, batch: dict[str, torch.Tensor]):
        """(location log-probabilities [B, N], cluster logits [B, clusters] or None)."""
        summary = self.dropout(self.encode(batch))
        logits = self.classifier(summary)
        if not self.use_hierarchy:
            return torch.log_softmax(logits, dim=-1), None
        cluster_logits = self.cluster_head(summary)
        prior = torch.softmax(cluster_logits, dim=-1) @ self.assignment().T
        return torch.log_softmax(logits + torch.log(prior + EPSILON), dim=-1), cluster_logits

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.heads(batch)[0]

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        log_probs, cluster_logits = self.heads(batch)
        loss = smoothed_nll(log_probs, batch["target"], self.label_smoothing)
        if cluster_logits is None:
            return loss
        soft_target = self.assignment(batch["target"]).detach()
        cluster_ce = -(soft_target * torch.log_softmax(cluster_logits, dim=-1)).sum(-1).mean()
        return loss + self.aux_weight * cluster_ce
