"""Evaluation-only wrappers around trained runs: the prior report's 2-model ensemble and MC dropout.

Both load checkpoints written by earlier runs (``members``) and train nothing. An ensemble of two
480K-parameter baselines has ~960K parameters, over the budget, so its experiment carries
``_over_budget`` in its name.
"""
from __future__ import annotations

from torch import nn

from nextloc.core.errors import ConfigError
from nextloc.models.base import NextLocationModel, register
from nextloc.models.checkpoint import load_checkpoint
from nextloc.models.losses import average_probabilities
from nextloc.core import paths


def load_member(path: str) -> NextLocationModel:
    """A trained model from a checkpoint path, relative paths taken from the project root."""
    path = paths.PROJECT_ROOT / path
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found; run the experiment that writes it "
                          f"first (e.g. `nextloc run baseline`).")
    model, _ = load_checkpoint(path, device="cpu")
    model.requires_grad_(False)
    return model


class MemberModel(NextLocationModel):
    """Checks that the members were trained on the same location and user vocabulary."""

    def __init__(self, num_locations: int, num_users: int, members: list[str]):
        super().__init__(num_locations, num_users)
        if not members:
            raise ConfigError(f"{type(self).__name__} needs at least one member checkpoint")
        self.members = nn.ModuleList(load_member(path) for path in members)
        for path, member in zip(members, self.members):
            if (member.num_locations, member.num_users) != (num_locations, num_users):
                raise ConfigError(f"{path}: trained for {member.num_locations} locations and "
                                  f"{member.num_users} users, not {num_locations} and {num_users}")


@register("ensemble")
class ProbabilityEnsemble(MemberModel):
    """Average of the members' probabilities."""

    def forward(self, batch):
        return average_probabilities([member(batch) for member in self.members])


@register("mc_dropout")
class MonteCarloDropout(MemberModel):
    """One trained model with its dropout layers active at test time, ``samples`` forward passes
    averaged in probability space (Gal & Ghahramani, 2016). Dropout is drawn from torch's
    generator, which the run's seed fixes."""

    def __init__(self, num_locations: int, num_users: int, members: list[str], samples: int = 10):
        super().__init__(num_locations, num_users, members)
        if len(members) != 1 or samples < 1:
            raise ConfigError("mc_dropout takes exactly one member and samples >= 1")
        self.samples = samples

    def forward(self, batch):
        member = self.members[0]
        dropouts = [m for m in member.modules() if isinstance(m, nn.Dropout)]
        for module in dropouts:
            module.train()
        try:
            return average_probabilities([member(batch) for _ in range(self.samples)])
        finally:
            for module in dropouts:
                module.train(self.training)
