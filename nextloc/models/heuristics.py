"""Non-neural references. Each scores every location; ties in the main rule are broken by a
smaller secondary score (the most recent visit, then popularity in train), never left to chance.
Scores are float64 so that the smallest tie-breaking term still registers on top of the largest
primary count.

- ``persistent``: the last visited location.
- ``history_most_frequent``: the location seen most often in the 7-day history.
- ``user_most_frequent``: the user's most frequent target location in the training split.
- ``markov``: per user, the location that most often followed the current one in the training
  split; when the user never left the current location in train, it falls back to
  ``history_most_frequent``.
"""
from __future__ import annotations

import numpy as np
import torch

from nextloc.models.base import NextLocationModel, register

# Score scales, each far above everything the scale below can add up to: the main rule's counts
# (PRIMARY), the fallback's counts (SECONDARY), then the tie-breaks, which stay below 1 in total:
# the latest visit in (0, 1) times RECENCY_WEIGHT, and train popularity in [0, 1) times
# POPULARITY_WEIGHT.
PRIMARY, SECONDARY = 1e6, 1e3
RECENCY_WEIGHT, POPULARITY_WEIGHT = 1e-3, 1e-6


class CountingModel(NextLocationModel):
    """Shared parts: scatter history weights onto location ids, train popularity as last resort."""

    def __init__(self, num_locations: int, num_users: int):
        super().__init__(num_locations, num_users)
        self.register_buffer("popularity", torch.zeros(num_locations, dtype=torch.float64))

    def fit_statistics(self, train) -> None:
        counts = np.bincount(train.target, minlength=self.num_locations).astype(np.float64)
        self.popularity = torch.from_numpy(counts / (counts.max() + 1.0)).to(self.popularity)

    def empty_scores(self, batch) -> torch.Tensor:
        return torch.zeros(len(batch["user"]), self.num_locations, dtype=torch.float64,
                           device=batch["user"].device)

    def history_counts(self, batch) -> torch.Tensor:
        weight = batch["mask"].double()
        return self.empty_scores(batch).scatter_add_(1, batch["location"], weight)

    def latest_visit(self, batch) -> torch.Tensor:
        """Per location, (position of its latest visit + 1) / (history length + 1), in (0, 1)."""
        position = torch.arange(batch["location"].shape[1], device=batch["location"].device)
        recency = (position[None, :] + 1) / (batch["length"][:, None] + 1.0)
        recency = recency.double() * batch["mask"]
        return self.empty_scores(batch).scatter_reduce_(1, batch["location"], recency, "amax")

    def tie_break(self, batch) -> torch.Tensor:
        return (self.latest_visit(batch) * RECENCY_WEIGHT
                + self.popularity * POPULARITY_WEIGHT)


@register("persistent")
class Persistent(CountingModel):
    def forward(self, batch):
        last = batch["location"].gather(1, (batch["length"] - 1)[:, None])
        return (self.empty_scores(batch).scatter_(1, last, PRIMARY) + self.history_counts(batch)
                + self.tie_break(batch))


@register("history_most_frequent")
class HistoryMostFrequent(CountingModel):
    def forward(self, batch):
        return self.history_counts(batch) + self.tie_break(batch)


@register("user_most_frequent")
class UserMostFrequent(CountingModel):
    def __init__(self, num_locations: int, num_users: int):
        super().__init__(num_locations, num_users)
        self.register_buffer("user_counts", torch.zeros(num_users + 1, num_locations,
                                                        dtype=torch.float64))

    def fit_statistics(self, train) -> None:
        super().fit_statistics(train)
        counts = np.zeros((self.num_users + 1, self.num_locations), dtype=np.float64)
        np.add.at(counts, (train.user, train.target), 1.0)
        self.user_counts = torch.from_numpy(counts).to(self.user_counts)

    def forward(self, batch):
        return (self.user_counts[batch["user"]] * PRIMARY + self.history_counts(batch)
                + self.tie_break(batch))


@register("markov")
class UserMarkov(CountingModel):
    """Transitions (last history location -> target) of each user's training samples, stored as
    one dense row per (user, from-location) pair that occurs, looked up by binary search."""

    def __init__(self, num_locations: int, num_users: int):
        super().__init__(num_locations, num_users)
        self.register_buffer("pair_keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("pair_counts", torch.zeros(0, num_locations, dtype=torch.float64))

    def fit_statistics(self, train) -> None:
        super().fit_statistics(train)
        previous = train.location[train.offsets[1:] - 1]
        keys = train.user * self.num_locations + previous
        unique_keys, row = np.unique(keys, return_inverse=True)
        counts = np.zeros((len(unique_keys), self.num_locations), dtype=np.float64)
        np.add.at(counts, (row, train.target), 1.0)
        self.pair_keys = torch.from_numpy(unique_keys).to(self.pair_keys.device)
        self.pair_counts = torch.from_numpy(counts).to(self.pair_counts.device)

    def forward(self, batch):
        last = batch["location"].gather(1, (batch["length"] - 1)[:, None])[:, 0]
        keys = batch["user"] * self.num_locations + last
        row = torch.searchsorted(self.pair_keys, keys).clamp(max=max(len(self.pair_keys) - 1, 0))
        scores = self.history_counts(batch) * SECONDARY + self.tie_break(batch)
        if len(self.pair_keys) == 0:
            return scores
        found = (self.pair_keys[row] == keys).double()[:, None]
        return scores + found * self.pair_counts[row] * PRIMARY
