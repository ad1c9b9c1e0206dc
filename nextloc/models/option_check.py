"""Model options checked before a model is built (issue 23): sizes that are no positive integer,
a width the attention heads do not divide, and sizes whose parameters could never fit in memory.
Built unchecked, ``dim: 0`` raised ZeroDivisionError, a negative dim a torch RuntimeError, a dim
the heads do not divide an AssertionError, and ``dim: 1e7`` with ``over_budget_ok`` allocated
until the kernel killed the process. Each is now one ConfigError naming the option."""
from __future__ import annotations

import inspect

from nextloc.core.errors import ConfigError, shorten

# Options that count something the model builds: at least one of each.
POSITIVE = ("dim", "heads", "layers", "feedforward", "size", "samples")
# Options where 0 switches the part off (clusters: 0 = no cluster embedding).
NON_NEGATIVE = ("clusters",)
LARGEST_SIZE = 1_000_000  # far above any width that fits the budget; stops 1e7 early
# Even an over-budget ablation stays below this (weights and Adam's two moments in float32:
# ~800 MB), so an absurd size is refused in a second instead of being killed after minutes.
MAX_PARAMETERS = 50_000_000


def defaults(cls) -> dict:
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def check_sizes(name: str, options: dict) -> None:
    for option in POSITIVE + NON_NEGATIVE:
        if option not in options:
            continue
        value, low = options[option], 1 if option in POSITIVE else 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not \
                low <= value <= LARGEST_SIZE:
            raise ConfigError(f"model '{name}' cannot be built: option {option} must be a "
                              f"whole number in [{low}, {LARGEST_SIZE:,}]; got "
                              f"{shorten(repr(options[option]), 40)}.")


def lower_bound(num_locations: int, settings: dict) -> int:
    """Parameters the model has at least: a model with a width embeds each location at it (and
    predicts over all of them) unless it shares rows between places (``location_rows``), and a
    transformer layer holds four dim x dim projections."""
    dim = settings.get("dim")
    if not isinstance(dim, int):
        return 0
    layers = settings.get("layers") if isinstance(settings.get("layers"), int) else 0
    heads = 4 * dim * dim * layers if "heads" in settings else 0
    return (0 if "location_rows" in settings else num_locations * dim) + heads


def check_options(cls, name: str, num_locations: int, options: dict,
                  over_budget_ok: bool, budget: int) -> None:
    """Raise a ConfigError for options the model cannot be built with; sizes first, then the
    parameter count estimated before anything is allocated."""
    check_sizes(name, options)
    settings = {**defaults(cls), **options}
    dim, heads = settings.get("dim"), settings.get("heads")
    if isinstance(dim, int) and isinstance(heads, int) and dim % heads:
        raise ConfigError(f"model '{name}' cannot be built: dim {dim} must be a multiple of "
                          f"heads {heads} (each attention head gets dim / heads).")
    least = lower_bound(num_locations, settings)
    if least >= MAX_PARAMETERS:
        raise ConfigError(f"model '{name}' would have at least {least:,} parameters "
                          f"({num_locations:,} locations x dim {dim}"
                          f"{', plus its layers' if least > num_locations * dim else ''}), more "
                          f"than nextloc builds even for an over-budget ablation "
                          f"({MAX_PARAMETERS:,}); use a smaller model.dim.")
    if least >= budget and not over_budget_ok:
        raise ConfigError(f"model '{name}' would have at least {least:,} parameters "
                          f"({num_locations:,} locations x dim {dim}), over the budget of "
                          f"{budget:,}; shrink it, or name the experiment '..._over_budget' "
                          f"to run it as an ablation.")
