"""Several pointer models trained side by side, their probabilities averaged: a deep ensemble
(Lakshminarayanan et al., 2017) that fits inside one parameter budget.

One 64-d pointer model uses 194K of the 500K budget, so two of them fit (389K). Each member is
trained on its own loss, as if it were trained alone; the members differ only by their random
initialisation and dropout masks, which is enough to make their errors partly independent.
Averaging probabilities, not log-probabilities, keeps the result a proper distribution.
Every option except ``size`` and ``mutual`` is passed to each member (see :class:`PointerModel`).

``mutual`` (off by default) trains the members as in deep mutual learning (Zhang et al., 2018):
each member's loss also carries ``mutual`` times the KL divergence from the other members'
averaged prediction (held fixed) to its own, so that each learns from where the others put
probability beyond the one observed target.

``teacher`` and ``distill`` (off by default) distil a frozen teacher into every member
(:mod:`nextloc.models.distillation`): ``teacher`` lists trained checkpoints, whose averaged
prediction on each training sample is a soft target, and each member's loss becomes
``(1 - distill)`` times its own loss plus ``distill`` times KL(teacher || member). The teacher is
not part of the model: it counts neither in the parameters nor in the checkpoint.
"""
from __future__ import annotations

import torch
from torch import nn

from nextloc.core.errors import ConfigError
from nextloc.models.base import NextLocationModel, register
from nextloc.models.distillation import Teacher
from nextloc.models.losses import average_probabilities, kl_divergence, smoothed_nll
from nextloc.models.pointer import PointerModel


@register("pointer_ensemble")
class PointerEnsemble(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, size: int = 2, dim: int = 64,
                 mutual: float = 0.0, teacher: list[str] | None = None, distill: float = 0.0,
                 **member_options):
        # dim defaults to 64, not the member's 96: two 96-d members would exceed the budget.
        super().__init__(num_locations, num_users)
        if size < 1:
            raise ConfigError(f"pointer_ensemble needs size >= 1, got {size}")
        if mutual < 0 or (mutual and size < 2):
            raise ConfigError(f"pointer_ensemble: mutual must be >= 0 and needs size >= 2, got "
                              f"mutual={mutual}, size={size}")
        if not 0 <= distill <= 1 or bool(teacher) != bool(distill):
            raise ConfigError(f"pointer_ensemble: distill must be in (0, 1] and comes with a "
                              f"teacher (a list of checkpoints), got distill={distill}, "
                              f"teacher={teacher!r}")
        self.mutual, self.distill = mutual, distill
        # A plain attribute, not a submodule: the teacher stays out of parameters() and state.
        self.teacher = Teacher(teacher) if teacher else None
        self.members = nn.ModuleList(
            PointerModel(num_locations, num_users, dim=dim, **member_options)
            for _ in range(size))

    @classmethod
    def option_names(cls) -> set[str]:
        return {"size", "dim", "mutual", "teacher", "distill"} | PointerModel.option_names()

    def fit_statistics(self, train) -> None:
        for member in self.members:
            member.fit_statistics(train)
        if self.teacher is not None:
            self.teacher.fit(train, self.num_locations, self.num_users)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return average_probabilities([member(batch) for member in self.members])

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        log_probs = [member(batch) for member in self.members]
        losses = [smoothed_nll(log_prob, batch["target"], self.label_smoothing)
                  for log_prob in log_probs]
        if self.mutual:
            for index, own in enumerate(log_probs):
                others = average_probabilities(
                    [other.detach() for i, other in enumerate(log_probs) if i != index])
                losses[index] = losses[index] + self.mutual * kl_divergence(own, others)
        if self.teacher is not None:
            soft_target = self.teacher.lookup(batch)
            losses = [(1 - self.distill) * loss + self.distill * kl_divergence(own, soft_target)
                      for loss, own in zip(losses, log_probs)]
        return torch.stack(losses).mean()
