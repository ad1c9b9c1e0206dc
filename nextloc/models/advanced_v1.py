"""The prior report's "Advanced_v1": the baseline transformer with cyclic time encodings and
focal loss (there: 489K parameters, 35.75 % test Acc@1 against the baseline's 37.95 %).

What the prior report describes: "Cyclic encoding + Focal loss", 489K parameters.
Interpretation made here:

- Time enters as sin/cos of its phase instead of the baseline's hour and weekday embedding
  tables: harmonics k = 1..4 of the minute of day (period 1440 min, so time is continuous
  rather than cut into hours) and k = 1..2 of the weekday (period 7), 12 features, projected
  into the model width by a small MLP (12 -> ``time_hidden`` -> dim, GELU). The prior report
  gives no layout; ``time_hidden=112`` is chosen so that the total, 488,731 parameters with 1,187
  locations and 45 users, matches the prior report's 489K.
- Everything else (location and user embeddings, sinusoidal positions, 4 pre-norm layers of
  d=88, causal mask, last-step summary, linear classifier) is the baseline's.
- ``training_loss`` is the focal loss (``focal_gamma=2``) times the label-smoothed
  cross-entropy, see :func:`nextloc.models.losses.focal_nll`; ``focal_gamma=0`` gives the
  baseline's plain smoothed cross-entropy, so the two changes can be ablated separately.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from nextloc.models.base import NextLocationModel, register
from nextloc.models.layers import add_encoder_trunk, encode_with_trunk
from nextloc.models.losses import focal_nll

MINUTES_PER_DAY = 1440


def cyclic_time_features(start_min: torch.Tensor, weekday: torch.Tensor, day_harmonics: int = 4,
                         week_harmonics: int = 2) -> torch.Tensor:
    """[..., 2 * (day_harmonics + week_harmonics)] sin/cos of the minute-of-day and weekday
    phases at harmonics 1..k."""
    day_phase = start_min.float() / MINUTES_PER_DAY * 2 * math.pi
    week_phase = weekday.float() / 7 * 2 * math.pi
    k_day = torch.arange(1, day_harmonics + 1, device=start_min.device, dtype=torch.float32)
    k_week = torch.arange(1, week_harmonics + 1, device=start_min.device, dtype=torch.float32)
    angles = torch.cat([day_phase[..., None] * k_day, week_phase[..., None] * k_week], dim=-1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@register("advanced_v1")
class AdvancedV1(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 88, layers: int = 4,
                 heads: int = 4, feedforward: int = 192, dropout: float = 0.15,
                 time_hidden: int = 112, day_harmonics: int = 4, week_harmonics: int = 2,
                 focal_gamma: float = 2.0):
        super().__init__(num_locations, num_users)
        self.day_harmonics, self.week_harmonics = day_harmonics, week_harmonics
        self.focal_gamma = focal_gamma
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)
        self.time = nn.Sequential(nn.Linear(2 * (day_harmonics + week_harmonics), time_hidden),
                                  nn.GELU(), nn.Linear(time_hidden, dim))
        add_encoder_trunk(self, num_locations, dim, layers, heads, feedforward, dropout)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, dim] summary of the history (the last real step of the encoder output)."""
        cyclic = cyclic_time_features(batch["start_min"], batch["weekday"], self.day_harmonics,
                                      self.week_harmonics)
        steps = (self.location(batch["location"]) + self.user(batch["user"])[:, None]
                 + self.time(cyclic))
        return encode_with_trunk(self, steps, batch)[1]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.log_softmax(self.classifier(self.dropout(self.encode(batch))), dim=-1)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return focal_nll(self(batch), batch["target"], self.focal_gamma, self.label_smoothing)
