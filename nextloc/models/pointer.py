"""A history-copying model: point at a step of the 7-day history, or generate any location.

Most next locations were already visited in the last week (84 % of test targets), so the model
mixes two distributions through a learned gate g:

    p(l) = g * sum_{j: loc_j = l} a_j  +  (1 - g) * softmax(W h)_l

where a_j is an attention distribution over history steps j (the pointer, after Vinyals et al.
2015 and See et al. 2017) and h summarises the history. Each history step is described by its
location, the user, time of day, weekday, duration, recency (days ago and steps back) and how
often its location occurs in the window; optional groups add whether it came right after a stay
at the current place (``transition``), and how far its time of day lies from the time of the
prediction, with whether both fall on a weekend or both on a working day (``time_apart``: an
embedding of the step and a learned bias on its copy score, for "where is this user at this
hour"); ``features`` switches these groups on and off, and
``copy`` / ``generate`` remove one path for ablations. The generation head shares its weights
with the location embedding, which keeps the model far under the 500K budget.

Geographic options (see :mod:`nextloc.models.geography`), off by default: ``distance`` adds a
learned bias of each candidate's distance bucket from the current place to the generation
logits, and an embedding of each history step's distance bucket from the current place to that
step's key, so the copy attention can weigh places by how far they are; ``clusters: K`` makes a
location's vector its own embedding plus its cluster's, both for the history steps and for the
tied generation head (where locations of one cluster then share a part of their score).

``location_rows`` bounds the size with many places (see :mod:`nextloc.models.location_rows`):
an integer K builds every place's vector from shared rows, plus own rows for the K places most
often a training target; ``None`` (the default) keeps one row per place while the model fits the
500K budget, and beyond it uses the shared rows alone (K = 0, chosen on Geolife's validation
split over K = 256), so the model trains on any number of places.

``long_term`` adds to the generation logits a learned bias from the user's counts over the
training period (visits, and transitions from the current place; see
:mod:`nextloc.models.long_term_prior`): knowledge older than the 7-day window.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from nextloc.core.errors import ConfigError
from nextloc.models.base import (PARAMETER_BUDGET, NextLocationModel, count_parameters,
                                 register)
from nextloc.models.geography import (DISTANCE_BUCKETS, add_geography, cluster_embedding,
                                      distance_logits)
from nextloc.models.layers import (CheapDropout, last_step, log_bucket, pre_norm_encoder,
                                   run_encoder)
from nextloc.models.location_rows import SharedLocationRows
from nextloc.models.long_term_prior import LongTermBias

FEATURE_GROUPS = ("user", "time", "duration", "recency", "frequency", "transition", "time_apart")
DEFAULT_FEATURES = FEATURE_GROUPS[:5]
MAX_STEPS_BACK = 64
MINUTES_PER_SLOT = 30
SLOTS_PER_DAY = 24 * 60 // MINUTES_PER_SLOT
SLOTS_APART = 24 * 60 // MINUTES_PER_SLOT // 2 + 1  # 0 .. 12 hours apart on the day's circle
WEEKEND = 5  # weekday 5 (Saturday) and 6 (Sunday); 0 is Monday
EPSILON = 1e-9


@register("pointer")
class PointerModel(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 96, layers: int = 2,
                 heads: int = 4, feedforward: int = 192, dropout: float = 0.1,
                 copy: bool = True, generate: bool = True,
                 features: list[str] = DEFAULT_FEATURES, distance: bool = False,
                 clusters: int = 0, long_term: bool = False, location_rows: int | None = None):
        super().__init__(num_locations, num_users)
        unknown = sorted(set(features) - set(FEATURE_GROUPS))
        if unknown or not (copy or generate):
            raise ConfigError(f"pointer: unknown feature group(s) {unknown} (known: "
                              f"{FEATURE_GROUPS}) or both copy and generate switched off")
        self.features, self.copy, self.generate = set(features), copy, generate
        if location_rows is None:  # size the model once with every option but this one
            options = {k: v for k, v in locals().items() if k in self.option_names()}
            location_rows = self.default_location_rows(num_locations, num_users, **options)
        self.location_rows = location_rows
        full_table = location_rows is None  # else the shared rows carry the generation biases
        self.location = (nn.Embedding(num_locations, dim, padding_idx=0) if full_table
                         else SharedLocationRows(num_locations, dim, location_rows))
        self.user = nn.Embedding(num_users + 1, dim) if "user" in self.features else None
        if "time" in self.features:
            self.slot = nn.Embedding(SLOTS_PER_DAY, dim)
            self.weekday = nn.Embedding(7, dim)
            self.now_slot = nn.Embedding(SLOTS_PER_DAY, dim)
            self.now_weekday = nn.Embedding(7, dim)
        self.duration = nn.Embedding(16, dim) if "duration" in self.features else None
        if "recency" in self.features:
            self.days_ago = nn.Embedding(8, dim)
            self.steps_back = nn.Embedding(MAX_STEPS_BACK, dim)
            self.recency_bias = nn.Embedding(MAX_STEPS_BACK, 1)
            nn.init.zeros_(self.recency_bias.weight)
        self.frequency = nn.Embedding(16, dim) if "frequency" in self.features else None
        self.follows_current = nn.Embedding(2, dim) if "transition" in self.features else None
        if "time_apart" in self.features:
            self.time_apart = nn.Embedding(2 * SLOTS_APART, dim)
            self.time_apart_bias = nn.Embedding(2 * SLOTS_APART, 1)
            nn.init.zeros_(self.time_apart_bias.weight)
        self.input_norm = nn.LayerNorm(dim)
        self.dropout = CheapDropout(dropout)
        self.encoder = pre_norm_encoder(dim, layers, heads, feedforward, dropout)
        self.summary = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                     nn.Linear(dim, dim))
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, 1)
        self.generation_bias = nn.Parameter(torch.zeros(num_locations)) if full_table else None
        add_geography(self, num_locations, dim, distance, clusters)  # after all the others
        self.key_distance = nn.Embedding(DISTANCE_BUCKETS, dim) if distance else None
        if distance:
            nn.init.zeros_(self.key_distance.weight)  # starts as the plain copy attention
        self.long_term = LongTermBias(dim) if long_term else None

    @classmethod
    def default_location_rows(cls, num_locations: int, num_users: int, **options) -> int | None:
        """None (a row per place) when the model with one row per place (``dim + 1`` parameters
        each) stays under the budget, else 0 (shared rows alone). Counted on a model with shared
        rows built on the meta device, which allocates nothing and draws no random numbers."""
        with torch.device("meta"):
            shared = cls(num_locations, num_users, **{**options, "location_rows": 0})
        without_rows = count_parameters(shared) - count_parameters(shared.location)
        fits = without_rows + num_locations * (options["dim"] + 1) < PARAMETER_BUDGET
        return None if fits else 0

    def fit_statistics(self, train) -> None:
        if self.geography is not None:
            self.geography.fit(train, "pointer")
        if self.location_rows is not None:
            self.location.fit(train.target)

    def location_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, dim] location vectors (plus their cluster's with ``clusters``) and the [N]
        generation biases."""
        if self.location_rows is None:
            vectors, biases = self.location.weight, self.generation_bias
        else:
            vectors, biases = self.location.table()
        if self.cluster is not None:
            vectors = vectors + cluster_embedding(self, self.geography.cluster_of)
        return vectors, biases

    def steps_back_index(self, batch) -> torch.Tensor:
        position = torch.arange(batch["location"].shape[1], device=batch["location"].device)
        return (batch["length"][:, None] - 1 - position[None, :]).clamp(0, MAX_STEPS_BACK - 1)

    def embed_steps(self, batch) -> torch.Tensor:
        steps = self.location(batch["location"])
        if self.cluster is not None:
            steps = steps + cluster_embedding(self, batch["location"])
        if self.user is not None:
            steps = steps + self.user(batch["user"])[:, None]
        if "time" in self.features:
            steps = steps + self.slot(batch["start_min"] // MINUTES_PER_SLOT)
            steps = steps + self.weekday(batch["weekday"])
        if self.duration is not None:
            steps = steps + self.duration(log_bucket(batch["duration"], 16))
        if "recency" in self.features:
            steps = steps + self.days_ago(batch["days_ago"].clamp(0, 7))
            steps = steps + self.steps_back(self.steps_back_index(batch))
        if self.frequency is not None:
            same = batch["location"][:, :, None] == batch["location"][:, None, :]
            count = (same & batch["mask"][:, None, :]).sum(-1)
            steps = steps + self.frequency(count.clamp(max=15))
        if self.follows_current is not None:
            # Did this stay come right after a stay at the current place? Then it is what the
            # user did next the last time they were here: a first-order transition in the window.
            previous = torch.nn.functional.pad(batch["location"][:, :-1], (1, 0))
            current = last_step(batch["location"], batch["length"])
            follows = (previous == current[:, None]) & batch["mask"]
            steps = steps + self.follows_current(follows.long())
        if "time_apart" in self.features:
            steps = steps + self.time_apart(self.time_apart_index(batch))
        return self.dropout(self.input_norm(steps))

    @staticmethod
    def now(batch) -> tuple[torch.Tensor, torch.Tensor]:
        """[B] half-hour slot and weekday at which the prediction is made: the end of the last
        stay."""
        length = batch["length"]
        end = last_step(batch["start_min"], length) + last_step(batch["duration"], length)
        weekday = (last_step(batch["weekday"], length) + end // 1440) % 7
        return (end % 1440) // MINUTES_PER_SLOT, weekday

    def now_context(self, batch) -> torch.Tensor:
        slot, weekday = self.now(batch)
        return self.now_slot(slot) + self.now_weekday(weekday)

    @classmethod
    def time_apart_index(cls, batch) -> torch.Tensor:
        """[B, L] bucket of each step: half-hours between its start and the prediction's time of
        day (0 .. 24 on the day's circle), times 2, plus 1 where both fall on a weekend or both
        on a working day."""
        now_slot, now_weekday = cls.now(batch)
        apart = (batch["start_min"] // MINUTES_PER_SLOT - now_slot[:, None]).abs()
        apart = torch.minimum(apart, 2 * (SLOTS_APART - 1) - apart)
        same_kind = (batch["weekday"] >= WEEKEND) == (now_weekday[:, None] >= WEEKEND)
        return 2 * apart + same_kind.long()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = self.mixture(batch)
        if not self.generate:
            return torch.log(parts["copy"] + EPSILON)
        if not self.copy:
            return torch.log(parts["generate"] + EPSILON)
        return torch.log(torch.lerp(parts["generate"], parts["copy"], parts["gate"])
                         .add_(EPSILON))

    def mixture(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The parts :meth:`forward` mixes: ``attention`` [B, L] over the history steps and
        ``copy`` [B, N], the attention summed per location (with the copy path); ``generate``
        [B, N] (with the generation path); ``gate`` [B, 1], the weight of copying (with both)."""
        mask = batch["mask"]
        hidden = run_encoder(self.encoder, self.embed_steps(batch), ~mask)
        context = last_step(hidden, batch["length"])
        if "time" in self.features:
            context = context + self.now_context(batch)
        if self.user is not None:
            context = context + self.user(batch["user"])
        summary = self.summary(context)
        parts = {}
        if self.copy:
            parts["attention"] = self.copy_attention(hidden, summary, batch)
            copy = torch.zeros(len(mask), self.num_locations, device=mask.device)
            parts["copy"] = copy.scatter_add_(1, batch["location"], parts["attention"] * mask)
        if self.generate:
            parts["generate"] = self.generation_distribution(summary, batch)
        if self.copy and self.generate:
            parts["gate"] = torch.sigmoid(self.gate(summary))
        return parts

    def copy_attention(self, hidden, summary, batch) -> torch.Tensor:
        """[B, L] attention over the history steps (0 on padding)."""
        mask = batch["mask"]
        keys = self.key(hidden)
        if self.key_distance is not None:
            current = last_step(batch["location"], batch["length"])
            keys = keys + self.key_distance(self.geography.step_buckets(batch["location"],
                                                                        current))
        scores = torch.bmm(keys, self.query(summary)[:, :, None] / math.sqrt(hidden.shape[-1]))
        scores = scores.view(scores.shape[:2])
        if "recency" in self.features:
            scores = scores + self.recency_bias(self.steps_back_index(batch))[..., 0]
        if "time_apart" in self.features:
            scores = scores + self.time_apart_bias(self.time_apart_index(batch))[..., 0]
        return torch.softmax(scores.masked_fill(~mask, -1e9), dim=1)

    def generation_distribution(self, summary, batch) -> torch.Tensor:
        """[B, N] softmax of the generation head, tied to the location vectors."""
        summary = self.dropout(summary)
        vectors, biases = self.location_table()
        logits = summary @ vectors.T + biases
        if self.distance_bias is not None:
            logits = logits + distance_logits(self, summary, batch)
        if self.long_term is not None:
            logits = logits + self.long_term(summary, batch, self.num_locations)
        return torch.softmax(logits, dim=-1)
