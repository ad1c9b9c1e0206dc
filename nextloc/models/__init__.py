"""The model registry. Importing this package registers every model in it."""
from nextloc.models.base import (PARAMETER_BUDGET, NextLocationModel, build_model, count_parameters,
                                 register, registered_models)
from nextloc.models import baseline, heuristics  # noqa: F401  (registration side effects)

__all__ = ["PARAMETER_BUDGET", "NextLocationModel", "build_model", "count_parameters", "register",
           "registered_models"]
