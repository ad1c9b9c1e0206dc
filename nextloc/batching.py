"""What the training loop feeds the models: padded batches (per-batch padding, length bucketing
when shuffled), and the simulation of the unseen-location class inside the training split."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from nextloc.data import STEP_FIELDS, UNSEEN, Split
from nextloc.errors import DataError


def mask_new_locations(split: Split, boundary_fraction: float) -> Split:
    """Simulate the unseen-location class inside the training split.

    At test time every location first visited after the training period is encoded as 1, and
    such targets are common; the training split itself never contains a 1. Here, per user, the
    samples after ``boundary_fraction`` of the user's training days get the same treatment
    against a vocabulary fitted on the earlier days: each location that no user visited before
    their boundary becomes 1, in the history and in the target. Uses the training split only.
    """
    if not 0 < boundary_fraction < 1:
        raise ValueError(f"boundary_fraction must be in (0, 1), got {boundary_fraction}")
    last_day = np.zeros(split.user.max() + 1, dtype=np.int64)
    np.maximum.at(last_day, split.user, split.target_day)
    boundary = boundary_fraction * last_day
    step_user = np.repeat(split.user, split.lengths)
    step_day = np.repeat(split.target_day, split.lengths) - split.days_ago
    early_steps = step_day < boundary[step_user]
    early_samples = split.target_day < boundary[split.user]
    known = np.zeros(max(split.location.max(), split.target.max()) + 1, dtype=bool)
    known[split.location[early_steps]] = True
    known[split.target[early_samples]] = True
    known[:2] = True
    late_steps = ~np.repeat(early_samples, split.lengths)
    location = np.where(late_steps & ~known[split.location], UNSEEN, split.location)
    target = np.where(~early_samples & ~known[split.target], UNSEEN, split.target)
    return replace(split, location=location, target=target)


def collate(split: Split, index: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad the histories of samples ``index`` to the longest among them (right padding).

    Returns ``location, weekday, start_min, duration, days_ago, mask`` of shape [B, L] (mask True
    on real steps) and ``user, target, length`` of shape [B].
    """
    starts, lengths = split.offsets[index], split.lengths[index]
    width = int(lengths.max())
    column = np.arange(width)
    mask = column[None, :] < lengths[:, None]
    source = np.where(mask, starts[:, None] + column[None, :], 0)
    batch = {name: torch.from_numpy(np.where(mask, getattr(split, name)[source], 0))
             for name in STEP_FIELDS}
    batch["mask"] = torch.from_numpy(mask)
    batch["length"] = torch.from_numpy(lengths.astype(np.int64))
    batch["user"] = torch.from_numpy(split.user[index])
    batch["target"] = torch.from_numpy(split.target[index])
    return batch


def batches(split: Split, batch_size: int, shuffle: bool = False,
            rng: np.random.Generator | None = None, bucket_batches: int = 32):
    """Yield padded batches. With ``shuffle``, samples are shuffled, then sorted by length inside
    windows of ``bucket_batches`` batches (less padding), and the batches shuffled again."""
    if len(split) == 0:
        raise DataError("cannot iterate over an empty split.")
    if not shuffle:
        order = np.arange(len(split))
        for start in range(0, len(order), batch_size):
            yield collate(split, order[start:start + batch_size])
        return
    rng = rng if rng is not None else np.random.default_rng()
    order = rng.permutation(len(split))
    window = batch_size * bucket_batches
    lengths = split.lengths
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        order[start:start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    groups = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    for group_index in rng.permutation(len(groups)):
        yield collate(split, groups[group_index])
