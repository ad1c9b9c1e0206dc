"""Device choice and seeding, shared by training and checkpoint loading."""
from __future__ import annotations

import ctypes
import random

import numpy as np
import torch

from nextloc.core.errors import ConfigError


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


def keep_freed_memory() -> None:
    """Let this process keep the memory it frees for its next tensors (glibc only; elsewhere a
    no-op).

    By default glibc's malloc hands blocks over 128 KiB straight back to the system, and the
    next tensor of that size (a [32, 1,187] score matrix is 152 KiB) page-faults on every page
    it touches: about 1 ms of system time per training batch of the pointer model on one CPU
    thread, some 5 %. Raising the mmap and trim thresholds keeps such blocks for reuse; the
    process then holds on to its peak memory, which for these models is small.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    mmap_threshold, trim_threshold = -3, -1  # mallopt's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    libc.mallopt(mmap_threshold, 32 * 1024 * 1024)  # glibc's largest allowed value
    libc.mallopt(trim_threshold, 1 << 30)


def set_threads(requested: int) -> int:
    """Intra-op threads, at most one per CPU: torch.set_num_threads(100000) crashed the process
    (a segfault in OpenMP) instead of running with what the machine has."""
    import os

    threads = max(1, min(int(requested), os.cpu_count() or 1))
    torch.set_num_threads(threads)
    return threads
