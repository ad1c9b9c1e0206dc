"""The training configuration and its checks, the one training loop, evaluation, metrics, the
optimizer. Built on core, data and models."""
