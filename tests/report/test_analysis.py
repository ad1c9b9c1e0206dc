"""Per-sample error analysis, checked against direct per-sample Python and hand-made frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from project_tools import registry_file

import nextloc.core.paths
import nextloc.report.analysis
from nextloc.report.analysis import accuracy_by, learning_curves, sample_features
from nextloc.data.split import UNSEEN


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
    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", tmp_path)
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
    from nextloc.report.analysis import gap_decomposition

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
    from nextloc.report.analysis import gap_decomposition

    parts = gap_decomposition(0.55, 0.18, 0.23, known_test=0.52, unseen_acc_test=0.6,
                              unseen_acc_val=0.5)
    total = parts["from unseen share"] + parts["from known places"] + parts["from unseen targets"]
    assert total == pytest.approx(parts["gap"])


# --- inside the pointer model ----------------------------------------------------------------

def test_pointer_internals_reproduce_the_copy_distribution(tiny_data):
    import torch

    from nextloc.report.analysis import pointer_internals
    from nextloc.data.batching import batches
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

    from nextloc.report.analysis import pointer_internals
    from nextloc.models import build_model

    torch.manual_seed(0)
    model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16,
                        heads=2, feedforward=32)
    gate, attention = pointer_internals(model, tiny_data.splits["test"], batch_size=8)
    assert ((gate > 0) & (gate < 1)).all()
    assert all(np.isclose(a.sum(), 1, atol=1e-5) for a in attention)


# --- worked examples and the model they read --------------------------------------------------

def tiny_ensemble(data, **options):
    import torch

    from nextloc.models import build_model

    torch.manual_seed(0)
    model = build_model("pointer_ensemble", data.num_locations, data.num_users, dim=16,
                        heads=2, feedforward=32, **options)
    model.fit_statistics(data.splits["train"])
    return model.eval()


def test_mixture_parts_add_up_to_the_ensembles_probabilities(tiny_data):
    import torch

    from nextloc.report.analysis import mixture_parts
    from nextloc.data.batching import batches

    model = tiny_ensemble(tiny_data)
    batch = next(iter(batches(tiny_data.splits["test"], 16)))
    parts = mixture_parts(model, batch)
    with torch.no_grad():
        probabilities = model(batch).exp()
    np.testing.assert_allclose((parts["copied"] + parts["generated"]).numpy(),
                               probabilities.numpy(), atol=1e-6)
    # the copy share is the copied mass, and the attention spreads it over the history steps
    np.testing.assert_allclose(parts["copied"].sum(1).numpy(), parts["gate"].numpy(), atol=1e-6)
    assert ((parts["gate"] >= 0) & (parts["gate"] <= 1)).all()
    np.testing.assert_allclose(parts["attention"].sum(1).numpy(), 1, atol=1e-5)
    members = [member.mixture(batch)["gate"][:, 0].detach() for member in model.members]
    np.testing.assert_allclose(parts["gate"].numpy(), torch.stack(members).mean(0).numpy(),
                               atol=1e-6)


def test_worked_examples_follow_the_stated_rule(tiny_data, tiny_frames):
    from nextloc.report.worked_examples import (EXAMPLE_KINDS, busiest_user, choose_examples,
                                         example_places, example_predictions, example_sentence)

    split = tiny_data.splits["test"]
    model = tiny_ensemble(tiny_data)
    user = busiest_user(split)
    counts = pd.Series(split.user).value_counts()
    assert counts[user] == counts.max() and user == counts[counts == counts.max()].index.min()

    samples, places = example_predictions(model, split, user)
    assert samples["sample"].tolist() == np.flatnonzero(split.user == user).tolist()
    top5 = places.groupby("sample")["probability"]
    assert (top5.size() == 5).all() and (top5.sum() <= 1 + 1e-6).all()
    assert (places.groupby("sample")["probability"].diff().dropna() <= 1e-7).all()  # by rank
    np.testing.assert_allclose(places["probability"], places["copied"] + places["generated"])
    assert samples["gate"].between(0, 1).all()
    first = places[places["rank"] == 1].set_index("sample")["place"]
    assert (samples["correct"] == (samples["target"] == samples["sample"].map(first))).all()
    expected_kind = np.where(~samples["correct"], "wrong", np.where(
        samples["target"] == UNSEEN, "right, the unseen class", "right, a known place"))
    assert (samples["kind"] == expected_kind).all()

    examples = choose_examples(samples)
    assert examples["kind"].tolist() == [k for k in EXAMPLE_KINDS if k in set(samples["kind"])]
    for example in examples.itertuples():  # the earliest sample of its kind
        assert example.sample == samples.loc[samples["kind"] == example.kind, "sample"].min()

    staypoints, _ = tiny_frames
    sample = int(examples["sample"].iloc[0])
    stays = example_places(split, sample, staypoints, None)
    steps = split.location[split.offsets[sample]:split.offsets[sample + 1]]
    assert stays["place"].tolist() == [*steps.tolist(), int(split.target[sample])]
    assert stays["role"].tolist() == ["history"] * len(steps) + ["target"]
    history = stays[stays["role"] == "history"]
    assert (history["visits"] == history.groupby("location_id")["place"].transform("size")).all()
    assert stays["lon"].isna().all()  # no locations file
    sentence = example_sentence(next(examples.itertuples()), stays, places[places["sample"] == sample])
    assert sentence.startswith(f"**{examples['kind'].iloc[0]}** (test sample {sample})")


def test_choose_examples_takes_the_earliest_of_each_kind_and_skips_missing_kinds():
    from nextloc.report.worked_examples import choose_examples

    samples = pd.DataFrame({"sample": [4, 5, 6, 7],
                            "kind": ["wrong", "right, a known place", "wrong",
                                     "right, a known place"]})
    chosen = choose_examples(samples)
    assert chosen[["kind", "sample"]].values.tolist() == [["right, a known place", 5],
                                                         ["wrong", 4]]


def test_trained_pointer_says_where_its_model_comes_from(project, tiny_data):
    import yaml

    from nextloc.report.analysis import trained_pointer
    from nextloc.models.checkpoint import save_checkpoint
    from nextloc.core.paths import checkpoint_path

    small = {"model.dim": 16, "model.heads": 2, "model.feedforward": 32}
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "tiny_pointer": {"model": "pointer", **small, "seeds": [3, 4, 5]},
        "tiny_student": {"model": "pointer_ensemble", **small, "model.distill": 0.5,
                         "model.teacher": ["{checkpoints}/tiny_pointer/seed_3.safetensors"],
                         "seeds": [3, 4, 5]}}}))

    # No checkpoint and no teacher: trained here, without the teacher, and saved nowhere.
    model, provenance = trained_pointer(tiny_data, True, "tiny_student")
    assert (provenance.seed, provenance.loaded) == (3, False)
    assert "trained on this page" in str(provenance)
    assert "without its distillation teacher" in str(provenance)
    assert len(model.members) == 2
    model, provenance = trained_pointer(tiny_data, True, "tiny_pointer")
    assert not provenance.loaded and "without" not in str(provenance)
    path = checkpoint_path("tiny_pointer", 3, True)
    assert not path.exists()

    # With the run's checkpoint: loaded from it, and then the student's teacher is there too.
    save_checkpoint(path, model, {"model": "pointer", "model_options": {
        "dim": 16, "heads": 2, "feedforward": 32}})
    loaded, provenance = trained_pointer(tiny_data, True, "tiny_pointer")
    assert provenance.loaded and "loaded from the checkpoint that its quick run saved" in \
        str(provenance)
    assert provenance.checkpoint == "runs/quick/checkpoints/tiny_pointer/seed_3.safetensors"
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert (a == b).all()
    _, provenance = trained_pointer(tiny_data, True, "tiny_student")
    assert not provenance.loaded and "without" not in str(provenance)
