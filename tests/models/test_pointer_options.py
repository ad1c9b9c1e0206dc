"""The pointer's optional ``time_apart`` features and the pair's mutual learning."""
from __future__ import annotations

import pytest
import torch

from nextloc.core.errors import ConfigError
from nextloc.models.base import build_model
from nextloc.models.losses import smoothed_nll
from nextloc.models.pointer import PointerModel
from test_every_registered_model import mixed_length_batch


def test_time_apart_buckets_are_half_hours_on_the_days_circle_and_the_kind_of_day():
    # The last stay starts Sunday 23:40 and lasts 40 minutes: the prediction is made Monday 00:20
    # (slot 0, a working day).
    batch = {"start_min": torch.tensor([[720, 0, 750, 1420]]),
             "weekday": torch.tensor([[1, 5, 0, 6]]),
             "duration": torch.tensor([[60, 60, 60, 40]]), "length": torch.tensor([4])}
    # Tuesday 12:00: 24 half-hours apart (the most there is), both working days -> 2*24 + 1.
    # Saturday 00:00: 0 apart, weekend against a working day -> 0.
    # Monday 12:30: slot 25, 25 apart one way and 23 the other -> 2*23 + 1.
    # Sunday 23:40: slot 47, one half-hour before slot 0 across midnight, weekend -> 2*1.
    assert PointerModel.time_apart_index(batch).tolist() == [[49, 0, 47, 2]]


def test_time_apart_adds_a_step_embedding_and_a_zero_initialised_copy_bias(tiny_data):
    features = ["user", "time", "duration", "recency", "frequency"]
    plain = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16,
                        feedforward=32, features=features)
    timed = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16,
                        feedforward=32, features=features + ["time_apart"])
    added = sum(p.numel() for p in timed.parameters()) - sum(p.numel()
                                                             for p in plain.parameters())
    assert added == 50 * 16 + 50
    assert not timed.time_apart_bias.weight.any()
    scores = timed.eval()(mixed_length_batch(tiny_data.splits["test"]))
    assert torch.isfinite(scores).all()


def test_mutual_learning_adds_each_members_divergence_from_the_other(tiny_data):
    torch.manual_seed(0)
    model = build_model("pointer_ensemble", tiny_data.num_locations, tiny_data.num_users,
                        size=2, dim=16, feedforward=32, dropout=0.0, mutual=0.5)
    model.label_smoothing = 0.1
    batch = mixed_length_batch(tiny_data.splits["test"])
    first, second = (member(batch) for member in model.members)
    plain = [smoothed_nll(lp, batch["target"], 0.1) for lp in (first, second)]
    kl_first = (second.exp() * (second - first)).sum(1).mean()   # KL(second || first)
    kl_second = (first.exp() * (first - second)).sum(1).mean()
    expected = (plain[0] + 0.5 * kl_first + plain[1] + 0.5 * kl_second) / 2
    assert torch.allclose(model.training_loss(batch), expected, atol=1e-6)
    assert kl_first > 0 and kl_second > 0


def test_mutual_learning_holds_the_others_prediction_fixed(tiny_data):
    # Member 1's gradient comes from its own loss and its own divergence only: the divergence of
    # member 0 treats member 1's prediction as a fixed target.
    torch.manual_seed(0)
    model = build_model("pointer_ensemble", tiny_data.num_locations, tiny_data.num_users,
                        size=2, dim=16, feedforward=32, dropout=0.0, mutual=1.0)
    batch = mixed_length_batch(tiny_data.splits["test"])
    model.training_loss(batch).backward()
    got = [p.grad.clone() for p in model.members[1].parameters()]
    model.zero_grad()
    first, second = (member(batch) for member in model.members)
    own = smoothed_nll(second, batch["target"], 0.0)
    own = own + (first.detach().exp() * (first.detach() - second)).sum(1).mean()
    (own / 2).backward()
    expected = [p.grad for p in model.members[1].parameters()]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, expected))


@pytest.mark.parametrize("options", [{"size": 1, "mutual": 0.5}, {"size": 2, "mutual": -1.0}])
def test_mutual_learning_needs_two_members_and_a_non_negative_weight(options, tiny_data):
    with pytest.raises(ConfigError, match="mutual"):
        build_model("pointer_ensemble", tiny_data.num_locations, tiny_data.num_users, dim=16,
                    **options)
