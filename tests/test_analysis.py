"""Per-sample error analysis, checked against direct per-sample Python and hand-made frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nextloc.analysis
from nextloc.analysis import accuracy_by, learning_curves, sample_features
from nextloc.data import UNSEEN


def test_sample_features_on_the_tiny_test_split(tiny_data):
    split = tiny_data.splits["test"]
    features = sample_features(split)

    assert len(features) == len(split)
    assert features["staypoint_id"].tolist() == split.staypoint_id.tolist()
    assert features["user"].tolist() == split.user.tolist()
    assert features["target"].tolist() == split.target.tolist()

    expected_in_history = [
        int(split.target[i]) in split.location[split.offsets[i]:split.offsets[i + 1]].tolist()
        for i in range(len(split))]
    assert features["in_history"].tolist() == expected_in_history
    assert features["unseen"].tolist() == (split.target == UNSEEN).tolist()
    # not vacuous: both outcomes occur in the tiny data
    assert 0 < features["in_history"].sum() < len(split)
    assert features["unseen"].any()


def hand_samples() -> pd.DataFrame:
    """Experiments A and B, seeds 1 and 2, the same four samples each: one weekend sample."""
    correct = {("A", 1): [1, 1, 0, 0], ("A", 2): [0, 1, 1, 0],
               ("B", 1): [1, 1, 1, 1], ("B", 2): [1, 0, 0, 1]}
    parts = [pd.DataFrame({"experiment": experiment, "seed": seed,
                           "run": f"{experiment}/seed_{seed}",
                           "weekend": [True, False, False, False],
                           "correct": np.array(values, dtype=bool)})
             for (experiment, seed), values in correct.items()]
    return pd.concat(parts, ignore_index=True)


def test_accuracy_by_averages_over_seeds_per_group():
    table = accuracy_by(hand_samples(), "weekend")
    # A, weekend: seeds 1 and 0 -> 0.5; weekdays: 1/3 and 2/3 -> 0.5
    # B, weekend: 1 and 1 -> 1.0; weekdays: 3/3 and 1/3 -> 2/3
    assert table.loc[True, "A"] == pytest.approx(0.5)
    assert table.loc[False, "A"] == pytest.approx(0.5)
    assert table.loc[True, "B"] == pytest.approx(1.0)
    assert table.loc[False, "B"] == pytest.approx(2 / 3)
    assert table.loc[True, "share of samples"] == pytest.approx(0.25)
    assert table.loc[False, "share of samples"] == pytest.approx(0.75)
    assert table["share of samples"].sum() == pytest.approx(1.0)
    assert sorted(table.columns) == ["A", "B", "share of samples"]


def test_learning_curves_stack_every_saved_history(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.analysis, "RESULTS_DIR", tmp_path)
    for seed, epochs in [(1, 3), (2, 2)]:
        run = tmp_path / "runs" / "x" / f"seed_{seed}"
        run.mkdir(parents=True)
        pd.DataFrame({"epoch": range(1, epochs + 1), "val_acc1": 0.5}).to_csv(
            run / "history.csv", index=False)
    curves = learning_curves(["x"])
    assert curves.groupby("seed")["epoch"].max().to_dict() == {1: 3, 2: 2}
    assert set(curves["experiment"]) == {"x"}
    with pytest.raises(FileNotFoundError, match="nextloc run y"):
        learning_curves(["y"])


# --- the validation-test gap -----------------------------------------------------------------

def test_gap_decomposition_by_hand():
    from nextloc.analysis import gap_decomposition

    # validation: 20 % unseen targets, known-place accuracy 0.5 -> Acc@1 0.4 (unseen all wrong)
    # test: 30 % unseen, known-place accuracy 0.4 -> Acc@1 0.28; gap 0.12
    parts = gap_decomposition(val_acc1=0.4, unseen_val=0.2, unseen_test=0.3, known_test=0.4,
                              unseen_acc_test=0.0)
    assert parts["known val"] == pytest.approx(0.5)
    assert parts["gap"] == pytest.approx(0.12)
    # share: (0.3 - 0.2) * mean known accuracy 0.45 = 0.045
    # known places: (1 - mean share 0.25) * (0.5 - 0.4) = 0.075
    assert parts["from unseen share"] == pytest.approx(0.045)
    assert parts["from known places"] == pytest.approx(0.075)
    assert parts["from unseen targets"] == pytest.approx(0.0)
    assert (parts["from unseen share"] + parts["from known places"]
            + parts["from unseen targets"]) == pytest.approx(parts["gap"])


def test_gap_decomposition_is_exact_when_the_unseen_class_is_predicted():
    from nextloc.analysis import gap_decomposition

    parts = gap_decomposition(0.55, 0.18, 0.23, known_test=0.52, unseen_acc_test=0.6,
                              unseen_acc_val=0.5)
    total = parts["from unseen share"] + parts["from known places"] + parts["from unseen targets"]
    assert total == pytest.approx(parts["gap"])


# --- inside the pointer model ----------------------------------------------------------------

def test_pointer_internals_reproduce_the_copy_distribution(tiny_data):
    import torch

    from nextloc.analysis import pointer_internals
    from nextloc.batching import batches
    from nextloc.models import build_model

    torch.manual_seed(0)
    split = tiny_data.splits["test"]
    model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16,
                        heads=2, feedforward=32, generate=False)
    model.fit_statistics(tiny_data.splits["train"])
    gate, attention = pointer_internals(model, split, batch_size=8)
    assert len(attention) == len(split) and (gate == 1).all()
    batch = next(iter(batches(split, 8)))
    model.eval()
    with torch.no_grad():
        probabilities = model(batch).exp()
    for row in range(len(batch["length"])):
        copy = np.zeros(tiny_data.num_locations)
        np.add.at(copy, batch["location"][row, :batch["length"][row]].numpy(), attention[row])
        np.testing.assert_allclose(probabilities[row].numpy(), copy, atol=1e-5)


def test_pointer_internals_gate_is_the_weight_of_copying(tiny_data):
    import torch

    from nextloc.analysis import pointer_internals
    from nextloc.models import build_model

    torch.manual_seed(0)
    model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16,
                        heads=2, feedforward=32)
    gate, attention = pointer_internals(model, tiny_data.splits["test"], batch_size=8)
    assert ((gate > 0) & (gate < 1)).all()
    assert all(np.isclose(a.sum(), 1, atol=1e-5) for a in attention)
