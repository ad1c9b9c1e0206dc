"""Device choice and seeding, shared by training and checkpoint loading."""
from __future__ import annotations

import random

import numpy as np
import torch

from nextloc.errors import ConfigError


def resolve_device(device: str) -> torch.device:
    """``auto`` takes a CUDA GPU when one is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"unknown device '{device}'; use auto, cpu or cuda") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested, but no CUDA GPU is visible; use "
                          f"--device cpu or auto")
    return resolved


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
