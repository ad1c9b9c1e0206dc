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
