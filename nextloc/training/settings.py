"""The training settings, :class:`TrainConfig`, and their type and range checks, one rule per
field, shared by the config itself and by the experiment registry. No torch here: reading and
checking the registry does not load it.

Numbers must be numbers. A string such as ``"1e-3"`` is refused with a message rather than
converted: nextloc reads YAML with the YAML 1.2 number rules (:mod:`nextloc.core.config_file`), so
``lr: 1e-3`` in the registry is already a float, and a string only arrives from Python code
or a quoted YAML value. Integer settings take integers; an integral float (``30.0``) is accepted
as the integer. Booleans are never numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

from nextloc.core.errors import ConfigError, shorten

MAX_SEED = 2**32 - 1  # numpy's seeding range


def _refuse(name: str, value, expected: str) -> ConfigError:
    return ConfigError(f"invalid training setting '{name}': it must be {expected}; got "
                       f"{shorten(repr(value), 60)}.")


def _number(name: str, value, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (write it without quotes)" if isinstance(value, str) else ""
        raise _refuse(name, value, expected + hint)
    if not math.isfinite(value):
        raise _refuse(name, value, f"{expected}, and finite")
    return value


def integer(low: int, high: int | None = None) -> Callable:
    expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def check(name: str, value) -> int:
        number = _number(name, value, expected)
        if number != int(number) or number < low or (high is not None and number > high):
            raise _refuse(name, value, expected)
        return int(number)
    return check


def real(low: float, high: float | None = None, low_open: bool = False,
         high_open: bool = False) -> Callable:
    bounds = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}" \
             f"{')' if high_open or high is None else ']'}"
    expected = f"a number in {bounds}"

    def check(name: str, value) -> float:
        number = _number(name, value, expected)
        below = number <= low if low_open else number < low
        above = high is not None and (number >= high if high_open else number > high)
        if below or above:
            raise _refuse(name, value, expected)
        return value
    return check


def optional(rule: Callable) -> Callable:
    def check(name: str, value):
        return None if value is None else rule(name, value)
    return check


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, value, "true or false")
    return value


def text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise _refuse(name, value, "a non-empty string")
    return value


def options(name: str, value) -> dict:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _refuse(name, value, "a mapping of option names to values")
    return value


RULES: dict[str, Callable] = {
    "model": text, "model_options": options, "seed": integer(0, MAX_SEED),
    "epochs": integer(0), "batch_size": integer(1), "lr": real(0, low_open=True),
    "weight_decay": real(0), "label_smoothing": real(0, 1, high_open=True),
    "warmup_epochs": integer(0), "patience": integer(1), "grad_clip": real(0),
    "refit": boolean, "mask_new_locations_after": optional(real(0, 1, True, True)),
    "train_fraction": real(0, 1, low_open=True),
    "weight_average": optional(real(0, 1, True, True)),
    "max_batches": optional(integer(1)), "device": text, "num_threads": optional(integer(1, 4096)),
    "over_budget_ok": boolean,
}


def check_setting(name: str, value):
    """The value of training setting ``name``, checked (integral floats become ints)."""
    return RULES[name](name, value) if name in RULES else value


@dataclass
class TrainConfig:
    """Training settings; each is checked on creation (:func:`check_setting`): numbers must be
    numbers (a string such as "1e-3" is refused), finite, and in range."""

    model: str = "baseline"
    model_options: dict = field(default_factory=dict)
    seed: int = 42
    epochs: int = 60            # upper bound with early stopping; exact count when refitting
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 2
    patience: int = 10          # epochs without a better validation Acc@1 before stopping
    grad_clip: float = 1.0
    refit: bool = False         # train on train + validation for exactly `epochs`, no selection
    # fraction of each user's training days after which new locations are relabelled "unseen"
    # (see nextloc.data.split.mask_new_locations); None leaves the training split as it is
    mask_new_locations_after: float | None = None
    # share of each user's training samples trained on, the most recent ones (learning curves;
    # see nextloc.data.batching.keep_recent_fraction); validation and test are never reduced
    train_fraction: float = 1.0
    # decay of an exponential moving average of the weights, updated after every step; the
    # average, not the last weights, is validated, kept by early stopping and tested (None: off)
    weight_average: float | None = None
    max_batches: int | None = None  # quick mode: cap batches per epoch (and per evaluation)
    device: str = "auto"
    num_threads: int | None = None
    over_budget_ok: bool = False

    def __post_init__(self):
        for setting in fields(self):
            setattr(self, setting.name, check_setting(setting.name, getattr(self, setting.name)))
