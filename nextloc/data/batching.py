"""What the training loop feeds the models: padded batches (per-batch padding, length bucketing
when shuffled), and the simulation of the unseen-location class inside the training split."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from nextloc.data.split import SAMPLE_FIELDS, STEP_FIELDS, UNSEEN, Split, _ranges
from nextloc.core.errors import DataError


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
    places = [split.location, split.target] + ([] if split.long_term is None
                                                else [split.long_term[..., 0]])
    known = np.zeros(max(p.max() for p in places) + 1, dtype=bool)
    known[split.location[early_steps]] = True
    known[split.target[early_samples]] = True
    known[:2] = True
    late_steps = ~np.repeat(early_samples, split.lengths)
    location = np.where(late_steps & ~known[split.location], UNSEEN, split.location)
    target = np.where(~early_samples & ~known[split.target], UNSEEN, split.target)
    long_term = split.long_term
    if long_term is not None:  # places new after the boundary are not in the simulated counts
        dropped = ~early_samples[:, None] & ~known[long_term[..., 0]]
        long_term = np.where(dropped[..., None], 0, long_term)
    return replace(split, location=location, target=target, long_term=long_term)


def select_samples(split: Split, index: np.ndarray) -> Split:
    """The samples ``index`` of ``split``, in that order, each with its whole history."""
    lengths = split.lengths[index]
    steps = _ranges(split.offsets[index], lengths)
    return replace(split, offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   **{name: getattr(split, name)[steps] for name in STEP_FIELDS},
                   **{name: getattr(split, name)[index] for name in SAMPLE_FIELDS},
                   long_term=None if split.long_term is None else split.long_term[index])


def keep_recent_fraction(split: Split, fraction: float) -> Split:
    """Per user, the most recent ``ceil(fraction * n)`` of the user's ``n`` samples (by target
    day, then split order), in split order: a training split with less data.

    The most recent samples are kept, not the earliest, so that every fraction ends where the
    training period ends, right before validation and test: the learning curve then varies the
    amount of data alone. Keeping the earliest would also widen the gap in time between the
    training targets and the test period, and charge the effect of that drift to "less data".
    Only whole samples are dropped: the histories of the kept ones are untouched.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return split
    order = np.lexsort((np.arange(len(split)), split.target_day, split.user))  # by user, day
    user = split.user[order]
    first = np.searchsorted(user, user, side="left")
    count = np.searchsorted(user, user, side="right") - first
    newest_rank = count - 1 - (np.arange(len(order)) - first)  # 0 = the user's latest sample
    keep = np.zeros(len(split), dtype=bool)
    keep[order] = newest_rank < np.ceil(fraction * count - 1e-9)  # 0.3 * 10 is 3, not 4
    return select_samples(split, np.flatnonzero(keep))


def collate(split: Split, index: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad the histories of samples ``index`` to the longest among them (right padding).

    Returns ``location, weekday, start_min, duration, days_ago, mask`` of shape [B, L] (mask True
    on real steps) and ``user, target, length, staypoint_id`` of shape [B] (the id names the
    sample, for distillation's look-up; no model reads it as an input).
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
    batch["staypoint_id"] = torch.from_numpy(split.staypoint_id[index])
    if split.long_term is not None:
        batch["long_term"] = torch.from_numpy(split.long_term[index])
    return batch


def batches(split: Split, batch_size: int, shuffle: bool = False,
            rng: np.random.Generator | None = None, bucket_batches: int = 32,
            order: np.ndarray | None = None):
    """Yield padded batches, in the split's order or in ``order``. With ``shuffle``, samples are
    shuffled, then sorted by length inside windows of ``bucket_batches`` batches (less padding),
    and the batches shuffled again."""
    if len(split) == 0:
        raise DataError("cannot iterate over an empty split.")
    if not shuffle:
        order = np.arange(len(split)) if order is None else order
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
