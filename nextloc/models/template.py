"""A commented template for a new model (after LibCity's ``TemplateTLP``): copy this file to
``nextloc/models/<your_model>.py``, rename the class and the registered name, and change
``__init__`` and ``forward``. It is a real, registered model ("template"), so the smoke tests of
``tests/test_models.py`` run it like every other one: a copy that breaks the interface fails there.

This one is deliberately small: the mean of the history's location embeddings, plus the user
and the hour of the last stay, classified over all locations. See the README, "Add a model".
"""
from __future__ import annotations

import torch
from torch import nn

from nextloc.models.base import NextLocationModel, register
from nextloc.models.layers import last_step


# The name given here is what `model:` in the registry and `--model` refer to.
@register("template")
class TemplateModel(NextLocationModel):
    # Every keyword argument after num_users is a model option: the registry sets it as
    # `model.<name>: value`, and build_model() rejects options the constructor does not take.
    def __init__(self, num_locations: int, num_users: int, dim: int = 32, dropout: float = 0.1):
        super().__init__(num_locations, num_users)
        # Location 0 is padding, 1 the unseen-location class; real places are 2..N-1.
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)  # user ids start at 1
        self.hour = nn.Embedding(24, dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_locations)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probabilities [B, num_locations] from one padded batch.

        ``batch`` (see nextloc.data.batching.collate) has per-step tensors [B, L], right-padded:
        location, weekday, start_min, duration, days_ago and mask (True on real steps), and
        per-sample tensors [B]: user, length and target. Never read ``target`` here."""
        mask = batch["mask"].unsqueeze(-1).float()
        history = (self.location(batch["location"]) * mask).sum(1) / mask.sum(1)
        now = self.hour(last_step(batch["start_min"], batch["length"]) // 60)
        summary = self.dropout(history + self.user(batch["user"]) + now)
        return torch.log_softmax(self.classifier(summary), dim=-1)

    # Optional hooks, inherited from NextLocationModel when not overridden:
    # - training_loss(batch): the loss the training loop minimises; the default is label-smoothed
    #   cross-entropy on forward(). Override it for a model with its own loss (focal, mixup).
    # - fit_statistics(train_split): called once before training with the training Split, for
    #   count-based tables (transitions, visit counts) kept as buffers.
    # A model with no trainable parameters is not trained at all, only evaluated.
