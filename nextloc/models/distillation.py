"""Knowledge distillation (Hinton et al., 2015): a frozen teacher's predictions on the training
samples as soft targets for a model within the budget.

The teacher is a set of trained checkpoints whose probabilities are averaged; it may be far over
the budget, because it is not part of the student: it is held outside the student's module tree,
so ``model.parameters()`` (the budget) and the student's checkpoints never contain it. Its
predictions are computed once, on the split the student trains on, at the first training batch,
and looked up by the target staypoint's id for every batch after (no teacher forward pass per
batch). No module here registers a model.
"""
from __future__ import annotations

import numpy as np
import torch

from nextloc.data.batching import batches
from nextloc.core.errors import ConfigError, TrainingError
from nextloc.models.losses import average_probabilities


class Teacher:
    """Averaged predictions of trained checkpoints (``paths``) on one training split."""

    def __init__(self, paths: list[str]):
        if not paths or not all(isinstance(path, str) for path in paths):
            raise ConfigError(f"a teacher is a list of checkpoint paths, got {paths!r}")
        self.paths = list(paths)
        self.train = self.ids = self.log_probs = None

    def fit(self, train, num_locations: int, num_users: int) -> None:
        """Remember the split the student trains on (a :class:`~nextloc.data.split.Split`). The
        checkpoints are read at the first training batch, so that a student built only to
        predict (from its own checkpoint) never needs its teacher's."""
        self.train, self.sizes = train, (num_locations, num_users)
        self.ids = self.log_probs = None

    def predict(self, batch_size: int = 512) -> None:
        """The checkpoints' averaged log-probabilities for every training sample, keyed by the
        target's staypoint id."""
        from nextloc.models.ensemble import load_member  # ensemble imports the registry

        # Building the members draws initial weights from torch's generator: a forked one, so
        # that the student's dropout masks do not depend on whether and when a teacher loads.
        with torch.random.fork_rng(devices=[]):
            members = [load_member(path) for path in self.paths]
        for path, member in zip(self.paths, members):
            if (member.num_locations, member.num_users) != self.sizes:
                raise ConfigError(f"teacher {path}: trained for {member.num_locations} locations "
                                  f"and {member.num_users} users, not {self.sizes[0]} and "
                                  f"{self.sizes[1]}")
            member.fit_statistics(self.train)
            member.eval()
        order = np.argsort(self.train.staypoint_id, kind="stable")
        ids = self.train.staypoint_id[order]
        if len(ids) > 1 and (np.diff(ids) == 0).any():
            raise ConfigError("the training split repeats a target staypoint id; the teacher's "
                              "predictions cannot be matched to its samples.")
        with torch.inference_mode():
            parts = [average_probabilities([member(batch) for member in members])
                     for batch in batches(self.train, batch_size, order=order)]
        self.ids, self.log_probs = torch.from_numpy(ids), torch.cat(parts).float()

    def lookup(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, num_locations] teacher log-probabilities for the batch's samples."""
        if self.train is None:
            raise TrainingError("the teacher has no training split: fit_statistics(train) must "
                                "run before training.")
        if self.log_probs is None:
            self.predict()
        device = batch["target"].device
        if self.log_probs.device != device:  # moved once, on the first batch
            self.ids, self.log_probs = self.ids.to(device), self.log_probs.to(device)
        wanted = batch["staypoint_id"]
        rows = torch.searchsorted(self.ids, wanted).clamp(max=len(self.ids) - 1)
        if not torch.equal(self.ids[rows], wanted):
            raise TrainingError("a training sample is not in the split the teacher predicted; "
                                "distillation trains on the split given to fit_statistics only.")
        return self.log_probs[rows]
