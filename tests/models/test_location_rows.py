"""The pointer's size stays under the budget however many places a dataset has (issue 25), and
stays the same model where a row per place fits."""
import numpy as np
import pytest
import torch

from nextloc.core.errors import ConfigError
from nextloc.data.split import PAD, UNSEEN
from nextloc.models import build_model, count_parameters
from nextloc.data.batching import collate
from nextloc.models.checkpoint import load_checkpoint
from nextloc.models.location_rows import SharedLocationRows
from nextloc.training.loop import train
from nextloc.training.settings import TrainConfig


def test_twenty_thousand_places_fit_the_budget_and_predict_a_distribution(tiny_data):
    model = build_model("pointer", num_locations=20_000, num_users=50, dim=64)
    assert model.location_rows == 0 and count_parameters(model) < 500_000
    model.eval()
    log_probs = model(collate(tiny_data.splits["test"], np.arange(5)))
    assert log_probs.shape == (5, 20_000)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(len(log_probs)), atol=1e-4)


def test_a_model_where_a_row_per_place_fits_keeps_its_full_table():
    model = build_model("pointer", num_locations=1_200, num_users=45, dim=64)
    assert model.location_rows is None
    assert {"location.weight", "generation_bias"} <= set(model.state_dict())
    assert model.location.weight.shape == (1_200, 64)


def test_the_size_does_not_grow_with_the_places_beyond_the_budget():
    sizes = [count_parameters(build_model("pointer", num_locations=n, num_users=45, dim=64))
             for n in (10_000, 100_000, 400_000)]
    assert max(sizes) < 500_000


def test_every_place_gets_a_distinct_vector_and_padding_none():
    rows = SharedLocationRows(num_locations=101, dim=8, own_rows=0)
    vectors, biases = rows.table()
    assert torch.equal(vectors[PAD], torch.zeros(8)) and torch.all(biases == 0)
    assert len(torch.unique(vectors[1:], dim=0)) == 100


def test_own_rows_go_to_the_unseen_class_then_the_most_frequent_targets():
    rows = SharedLocationRows(num_locations=10, dim=4, own_rows=3)
    rows.fit(np.array([7, 7, 7, 4, 4, 9, 9, 2]))  # 4 and 9 tie: the smaller id wins
    own = rows.own_row.numpy()
    assert own[UNSEEN] == 1 and own[7] == 2 and own[4] == 3
    assert own[PAD] == 0 and own[9] == 0 and (own > 0).sum() == 3


def test_an_own_row_changes_only_its_place():
    rows = SharedLocationRows(num_locations=10, dim=4, own_rows=2)
    rows.fit(np.array([5, 5, 6]))
    before = rows.table()[0].detach().clone()
    with torch.no_grad():
        rows.own.weight[rows.own_row[5]] += 1.0
    changed = (rows.table()[0] != before).any(1)
    assert changed.nonzero().flatten().tolist() == [5]


@pytest.mark.parametrize("bad", [-1, 2.5, "many", True])
def test_a_bad_location_rows_is_one_clear_error(bad):
    with pytest.raises(ConfigError, match="location_rows"):
        build_model("pointer", num_locations=50, num_users=3, location_rows=bad)


def test_shared_rows_train_and_survive_a_checkpoint(tiny_data, tmp_path):
    config = TrainConfig(model="pointer", epochs=2, device="cpu",
                         model_options={"dim": 16, "heads": 2, "feedforward": 32,
                                        "location_rows": 4})
    path = tmp_path / "shared.safetensors"
    result = train(config, tiny_data, checkpoint=path, progress=False)
    reloaded, _ = load_checkpoint(path, device="cpu")
    assert (reloaded.location.own_row > 0).sum() == 4  # fitted on the training targets
    reloaded.eval()
    batch = collate(tiny_data.splits["test"], np.arange(len(tiny_data.splits["test"])))
    with torch.inference_mode():
        top1 = reloaded(batch).argmax(1).numpy()
    assert result.test["acc1"] == pytest.approx((top1 == batch["target"].numpy()).mean())
