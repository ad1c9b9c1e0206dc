"""One interface for every model, and the registry that builds them by name.

A model maps a padded batch (see :func:`nextloc.data.batching.collate`) to log-probabilities over
all locations, [B, num_locations]. Training calls :meth:`NextLocationModel.training_loss`, so a
model with its own loss (focal, hierarchical, mixup) overrides that method and the loop never
branches on the model's name. Models that learn statistics from the training split (counts, graphs)
override :meth:`fit_statistics`; models without trainable parameters are not trained at all.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from nextloc.core.errors import ConfigError, shorten
from nextloc.models.losses import smoothed_nll
from nextloc.models.option_check import check_options

PARAMETER_BUDGET = 500_000
_REGISTRY: dict[str, Callable[..., "NextLocationModel"]] = {}


class NextLocationModel(nn.Module):
    label_smoothing: float = 0.0

    def __init__(self, num_locations: int, num_users: int):
        super().__init__()
        self.num_locations = num_locations
        self.num_users = num_users

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def fit_statistics(self, train) -> None:
        """Learn count-based statistics from the training :class:`~nextloc.data.split.Split`."""

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return smoothed_nll(self(batch), batch["target"], self.label_smoothing)

    @classmethod
    def option_names(cls) -> set[str]:
        """The options ``build_model`` accepts: the constructor's keyword arguments."""
        return set(inspect.signature(cls.__init__).parameters) - {"self", "num_locations",
                                                                   "num_users"}


def register(name: str):
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is registered twice")
        _REGISTRY[name] = cls
        return cls
    return decorate


def registered_models() -> list[str]:
    return sorted(_REGISTRY)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_class(name: str, options: dict) -> type[NextLocationModel]:
    """The registered class of ``name``, after checking that it accepts every option."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {shorten(repr(name), 60)}; registered models: "
                          f"{registered_models()}")
    cls = _REGISTRY[name]
    unknown = sorted(set(options) - cls.option_names())
    if unknown:
        raise ConfigError(f"model '{name}' has no option(s) {shorten(unknown, 100)}; it accepts "
                          f"{sorted(cls.option_names())}")
    return cls


def build_model(name: str, num_locations: int, num_users: int, over_budget_ok: bool = False,
                **options) -> NextLocationModel:
    """Build a registered model; refuse one with >= 500,000 parameters unless the experiment says
    it is an over-budget ablation."""
    cls = model_class(name, options)
    check_options(cls, name, num_locations, options, over_budget_ok, PARAMETER_BUDGET)
    try:
        model = cls(num_locations=num_locations, num_users=num_users, **options)
    # an option of the wrong type or out of range, wherever in torch it is noticed
    except (TypeError, ValueError, ArithmeticError, AssertionError, RuntimeError) as err:
        raise ConfigError(f"model '{name}' cannot be built with options "
                          f"{shorten(options, 150)}: {shorten(err, 150)}") from err
    n_params = count_parameters(model)
    if n_params >= PARAMETER_BUDGET and not over_budget_ok:
        raise ConfigError(f"model '{name}' has {n_params:,} parameters (with {num_locations:,} "
                          f"locations and {num_users:,} users), over the budget of "
                          f"{PARAMETER_BUDGET:,}; shrink it, or name the experiment "
                          f"'..._over_budget' to run it as an ablation.")
    return model
