"""train_fraction: a training split with less data, for learning curves."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nextloc.data.batching import keep_recent_fraction, mask_new_locations, select_samples
from nextloc.core.errors import ConfigError
from nextloc.training.loop import prepare
from nextloc.training.settings import TrainConfig


def history(split, sample: int) -> dict[str, list]:
    steps = slice(split.offsets[sample], split.offsets[sample + 1])
    return {name: getattr(split, name)[steps].tolist()
            for name in ("location", "weekday", "start_min", "duration", "days_ago")}


def test_select_samples_keeps_each_sample_whole(tiny_data):
    split = tiny_data.splits["train"]
    index = np.array([len(split) - 1, 0, 5])
    chosen = select_samples(split, index)
    assert len(chosen) == 3 and chosen.offsets[-1] == len(chosen.location)
    for new, old in enumerate(index):
        assert history(chosen, new) == history(split, old)
        assert chosen.staypoint_id[new] == split.staypoint_id[old]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.3, 0.5, 0.75, 0.999])
def test_keeps_the_most_recent_ceil_fraction_of_each_users_samples(tiny_data, fraction):
    split = tiny_data.splits["train"]
    kept = keep_recent_fraction(split, fraction)
    kept_ids = set(kept.staypoint_id.tolist())
    for user in np.unique(split.user):
        mine = split.user == user
        expected = math.ceil(round(fraction * mine.sum(), 9))
        assert (kept.user == user).sum() == expected
        # The kept ones are the latest: no dropped sample of the user is later than a kept one.
        is_kept = np.isin(split.staypoint_id[mine], list(kept_ids))
        days = split.target_day[mine]
        assert days[~is_kept].max(initial=-1) <= days[is_kept].min()
        # Within a day, the split order (by start minute) decides: the kept ones come last.
        assert not (is_kept[:-1] & ~is_kept[1:]).any()
    # Split order and whole histories are kept.
    position = {sid: i for i, sid in enumerate(split.staypoint_id.tolist())}
    old = [position[sid] for sid in kept.staypoint_id.tolist()]
    assert old == sorted(old)
    assert all(history(kept, new) == history(split, o) for new, o in enumerate(old))


def test_exact_counts_on_the_tiny_data(tiny_data):
    split = tiny_data.splits["train"]
    counts = {int(u): int((split.user == u).sum()) for u in np.unique(split.user)}
    kept = keep_recent_fraction(split, 0.25)
    assert {u: int((kept.user == u).sum()) for u in counts} == {
        u: math.ceil(n / 4) for u, n in counts.items()}
    assert len(kept) < len(split)


def test_fraction_one_is_the_identity(tiny_data):
    split = tiny_data.splits["train"]
    assert keep_recent_fraction(split, 1.0) is split


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_fractions_outside_zero_one_are_refused(tiny_data, fraction):
    with pytest.raises(ConfigError, match="train_fraction"):
        TrainConfig(train_fraction=fraction)
    with pytest.raises(ValueError):
        keep_recent_fraction(tiny_data.splits["train"], fraction)


def test_prepare_reduces_only_the_training_split(tiny_data):
    config = TrainConfig(model="persistent", train_fraction=0.5, mask_new_locations_after=0.5)
    sizes = {name: len(split) for name, split in tiny_data.splits.items()}
    _, train_split = prepare(config, tiny_data, torch.device("cpu"))
    # The unseen-location masking is computed on the whole training period, then samples go.
    masked = mask_new_locations(tiny_data.splits["train"], 0.5)
    expected = keep_recent_fraction(masked, 0.5)
    assert np.array_equal(train_split.target, expected.target)
    assert np.array_equal(train_split.location, expected.location)
    assert len(train_split) < sizes["train"]
    assert {name: len(split) for name, split in tiny_data.splits.items()} == sizes
