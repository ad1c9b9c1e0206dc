"""Location vectors whose parameter count does not grow with the number of places (issue 25).

A full table gives every place a vector of its own: ``dim + 1`` parameters per place in the
pointer (the vector, tied to the generation head, and the head's bias), so a 64-d pointer reaches
the 500K budget near 5,900 places while city-scale check-in data has tens of thousands. Here a
place's vector is the sum of

- two shared rows picked by the quotient and the remainder of its id divided by
  ``B = ceil(sqrt(N))``, the compositional embedding of Shi et al. (2020, "Compositional
  Embeddings Using Complementary Partitions"): no two places share both rows, so every place
  keeps a distinct vector, from about ``2 sqrt(N)`` rows in all;
- a row of its own for the ``own_rows`` places that are most often a target in the training split
  (the unseen class first, which is a fifth of Geolife's test targets). Own rows start at zero: a
  frequent place starts from its shared vector and learns a correction.

Each row carries one more column, the place's bias in the generation head, so the whole table has
``(own_rows + 1 + 2 sqrt(N)) (dim + 1)`` parameters. Which places own a row is a persistent
buffer filled by :meth:`SharedLocationRows.fit` and saved in checkpoints.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nextloc.data.split import PAD, UNSEEN


class SharedLocationRows(nn.Module):
    def __init__(self, num_locations: int, dim: int, own_rows: int):
        super().__init__()
        if isinstance(own_rows, bool) or not isinstance(own_rows, int) or own_rows < 0:
            raise ValueError(f"location_rows must be a whole number >= 0, got {own_rows!r}")
        self.own_rows = min(own_rows, num_locations)
        self.block = math.isqrt(max(num_locations - 1, 0)) + 1  # ceil(sqrt(N)) for N >= 1
        self.own = nn.Embedding(self.own_rows + 1, dim + 1, padding_idx=0)  # row 0: none
        self.quotient = nn.Embedding(-(-num_locations // self.block), dim + 1)
        self.remainder = nn.Embedding(self.block, dim + 1)
        for shared in (self.quotient, self.remainder):
            # two shared rows of variance 1/2: a place's vector starts with the full table's scale
            nn.init.normal_(shared.weight, std=math.sqrt(0.5))
        with torch.no_grad():
            self.own.weight.zero_()
            for shared in (self.quotient, self.remainder):
                shared.weight[:, -1].zero_()  # generation biases start at zero, as in the full table
        self.register_buffer("own_row", torch.zeros(num_locations, dtype=torch.long))

    def fit(self, targets: np.ndarray) -> None:
        """Give own rows to the unseen class and then to the places most often a training
        target (ties: the smaller id)."""
        counts = np.bincount(np.asarray(targets, dtype=np.int64),
                             minlength=len(self.own_row))[:len(self.own_row)].astype(float)
        counts[PAD] = -1.0
        if len(counts) > UNSEEN:
            counts[UNSEEN] = np.inf
        owners = np.argsort(-counts, kind="stable")[:self.own_rows]
        own_row = np.zeros(len(counts), dtype=np.int64)
        own_row[owners] = np.arange(1, len(owners) + 1)
        self.own_row.copy_(torch.from_numpy(own_row))

    def rows(self, location: torch.Tensor) -> torch.Tensor:
        """[..., dim + 1]: each place's vector and, last, its generation bias (0 on padding)."""
        rows = (self.own(self.own_row[location]) + self.quotient(location // self.block)
                + self.remainder(location % self.block))
        return rows * (location != PAD).unsqueeze(-1)

    def forward(self, location: torch.Tensor) -> torch.Tensor:
        return self.rows(location)[..., :-1]

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The [N, dim] vectors and [N] generation biases of every place."""
        rows = self.rows(torch.arange(len(self.own_row), device=self.own_row.device))
        return rows[:, :-1], rows[:, -1]
