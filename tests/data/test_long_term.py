"""The user's long-term counts (nextloc.data.long_term) and the pointer's bias from them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nextloc.data.batching import collate, mask_new_locations
from nextloc.core.errors import DataError
from nextloc.data.long_term import long_term_candidates, table_size
from nextloc.models.base import build_model

# One user's training period, in time order: places 2, 3, 2, 4, 2, 3 (stay ids 10..15); a second
# user with places 5, 5.
TRAIN = pd.DataFrame({"user_id": [1, 1, 1, 1, 1, 1, 2, 2], "id": [10, 11, 12, 13, 14, 15, 20, 21],
                      "location": [2, 3, 2, 4, 2, 3, 5, 5]})


def candidates(user, current, target_id, k=4):
    return long_term_candidates(TRAIN, np.array(user), np.array(current), np.array(target_id), k)


def test_a_training_sample_counts_only_the_stays_before_its_target():
    # Target stay 14 (place 2), current place 4: stays 10-13 are counted (2, 3, 2, 4).
    # Visits: 2 twice, 3 once, 4 once. Transitions from 4: none yet (4 -> 2 is the target's own).
    got = candidates([1], [4], [14])[0]
    assert got.tolist() == [[2, 2, 0], [3, 1, 0], [4, 1, 0], [0, 0, 0]]


def test_a_later_sample_counts_the_whole_training_period_and_ranks_transitions_first():
    # A test-split target (id 99): all six stays. From place 2 the user went to 3 twice, 4 once.
    got = candidates([1], [2], [99])[0]
    assert got.tolist() == [[3, 2, 2], [4, 1, 1], [2, 3, 0], [0, 0, 0]]


def test_candidates_are_per_user_and_cut_at_k():
    got = candidates([2, 1, 1], [5, 2, 2], [99, 99, 15], k=2)
    assert got[0].tolist() == [[5, 2, 1], [0, 0, 0]]
    assert got[1].tolist() == [[3, 2, 2], [4, 1, 1]]
    # Target stay 15 (place 3, the second 2 -> 3): only the first 2 -> 3 is counted.
    assert got[2].tolist() == [[3, 1, 1], [4, 1, 1]]


def test_table_size_counts_distinct_visits_and_transitions_per_user():
    # User 1: places {2, 3, 4}; transitions 2->3, 3->2, 2->4, 4->2. User 2: {5}; 5->5.
    assert table_size(TRAIN) == {"visit_counts": 4, "transition_counts": 5}


def test_real_pipeline_candidates_never_contain_a_training_target_count_of_its_own(tiny_data):
    train = tiny_data.splits["train"]
    assert train.long_term.shape == (len(train), 16, 3)
    # The first training sample of each user has fewer counted visits than the user's last one.
    visits = train.long_term[..., 1].sum(1)
    for user in np.unique(train.user):
        mine = np.flatnonzero(train.user == user)
        assert visits[mine[0]] < visits[mine[-1]]
    # Later splits see the whole training period: the same visit total for every sample of a user
    # (up to the cut at 16 candidates, which the tiny data does not reach).
    test = tiny_data.splits["test"]
    for user in np.unique(test.user):
        assert len(set(test.long_term[test.user == user][..., 1].sum(1))) == 1


def test_unseen_masking_removes_new_places_from_the_counts(tiny_data):
    train = tiny_data.splits["train"]
    masked = mask_new_locations(train, 0.5)
    relabelled = np.setdiff1d(train.target, masked.target)
    assert np.isin(train.long_term[..., 0], relabelled).any()  # so the check below can fail
    assert not np.isin(masked.long_term[..., 0], relabelled).any()


def pointer(data, **options):
    torch.manual_seed(0)
    return build_model("pointer", data.num_locations, data.num_users, dim=16, feedforward=32,
                       **options)


def test_the_long_term_bias_starts_from_the_plain_pointer_and_learns(tiny_data):
    batch = collate(tiny_data.splits["test"], np.arange(20))
    plain, with_counts = pointer(tiny_data).eval(), pointer(tiny_data, long_term=True).eval()
    with torch.no_grad():
        assert torch.allclose(plain(batch), with_counts(batch), atol=1e-6)
    with_counts.train()
    train = tiny_data.splits["train"]
    with_counts.training_loss(collate(train, np.arange(16))).backward()
    assert with_counts.long_term.transitions.weight.grad.abs().sum() > 0


def test_the_long_term_option_needs_counts_in_the_batch(tiny_data):
    batch = collate(tiny_data.splits["test"], np.arange(4))
    del batch["long_term"]
    with pytest.raises(DataError, match="long-term counts"):
        pointer(tiny_data, long_term=True)(batch)
