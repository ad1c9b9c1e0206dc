"""The model registry. Importing this package imports every module in it, and each module
registers its models with ``@register(name)``: adding a model is adding one file."""
import importlib
import pkgutil

from nextloc.models.base import (PARAMETER_BUDGET, NextLocationModel, build_model, count_parameters,
                                 register, registered_models)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PARAMETER_BUDGET", "NextLocationModel", "build_model", "count_parameters", "register",
           "registered_models"]
