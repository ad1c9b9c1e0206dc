"""Validation-only hyperparameter searches of the registry on Optuna. Built on experiments
and below."""
