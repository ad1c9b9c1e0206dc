"""Random search: the sampled trials, and the best point the experiments take from the results.
Nothing here trains; the results are hand-written CSVs in tmp_path."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

import nextloc.paths
import nextloc.search
from nextloc.errors import ConfigError
from nextloc.registry import best_point, search_spec
from nextloc.search import sample_trials, trial_row

SPACE = {"lr": [0.0005, 0.001, 0.002], "batch_size": [32, 64], "label_smoothing": [0.0, 0.1],
         "mask_new_locations_after": [None, 0.5], "model.features": [["user"], ["user", "time"]]}
GRID_SIZE = 3 * 2 * 2 * 2 * 2


def key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


# --- sample_trials ---------------------------------------------------------------------------

@pytest.mark.parametrize("trials", [1, 5, 20])
def test_sample_trials_are_distinct_points_of_the_space(trials):
    points = sample_trials(SPACE, trials, seed=0)
    assert len(points) == trials
    assert len({key(p) for p in points}) == trials
    for point in points:
        assert set(point) == set(SPACE)
        assert all(point[name] in values for name, values in SPACE.items())


def test_sample_trials_are_deterministic_for_a_seed():
    assert sample_trials(SPACE, 10, seed=3) == sample_trials(SPACE, 10, seed=3)
    # a prefix of a longer draw with the same seed: resuming with more trials keeps the old ones
    assert sample_trials(SPACE, 10, seed=3) == sample_trials(SPACE, 15, seed=3)[:10]


def test_more_trials_than_the_grid_give_the_whole_grid_once():
    points = sample_trials(SPACE, 1000, seed=0)
    assert len(points) == GRID_SIZE
    assert len({key(p) for p in points}) == GRID_SIZE


# --- best_point ------------------------------------------------------------------------------

REGISTRY = {"experiments": {}, "searches": {
    "parent": {"seed": 0, "trials": 3, "base": {"model": "pointer", "epochs": 20, "patience": 5},
               "space": {"lr": [0.001, 0.002], "model.dim": [64, 96]}},
    "child": {"base_search": "parent", "seed": 0, "seeds": [1, 2], "trials": 2,
              "base": {"model": "pointer", "patience": 3},
              "space": {"lr": [0.01, 0.02], "model.features": [["user"], ["user", "time"]]}},
}}


@pytest.fixture
def searches(tmp_path, monkeypatch):
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(REGISTRY))
    monkeypatch.setattr(nextloc.paths, "REGISTRY_FILE", path)
    monkeypatch.setattr(nextloc.paths, "SEARCH_DIR", tmp_path / "results" / "search")
    return tmp_path / "results" / "search"


def write_trials(folder, name: str, scored: list[tuple[dict, float]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"trial": key(point), **point, "val_acc1": acc1} for point, acc1 in scored]
    pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)


PARENT_TRIALS = [({"lr": 0.001, "model.dim": 64}, 0.40),
                 ({"lr": 0.002, "model.dim": 96}, 0.45),   # the best, neither first nor last
                 ({"lr": 0.001, "model.dim": 96}, 0.42)]
CHILD_TRIALS = [({"lr": 0.01, "model.features": ["user"]}, 0.46),
                ({"lr": 0.02, "model.features": ["user", "time"]}, 0.47)]


def test_best_point_is_the_best_validation_trial_over_the_base(searches):
    write_trials(searches, "parent", PARENT_TRIALS)
    assert best_point("parent") == {"model": "pointer", "epochs": 20, "patience": 5,
                                    "lr": 0.002, "model.dim": 96}


def test_best_point_builds_on_the_base_search_and_the_child_wins(searches):
    write_trials(searches, "parent", PARENT_TRIALS)
    write_trials(searches, "child", CHILD_TRIALS)
    assert best_point("child") == {
        "model": "pointer", "epochs": 20,  # from the parent's base
        "patience": 3,                      # the child's base over the parent's
        "model.dim": 96,                    # the parent's best trial
        "lr": 0.02,                         # the child's best trial over the parent's
        "model.features": ["user", "time"],
    }


def test_best_point_without_results_is_a_config_error(searches):
    with pytest.raises(ConfigError, match="search 'parent' has no results yet.*nextloc search"):
        best_point("parent")
    write_trials(searches, "parent", PARENT_TRIALS)
    with pytest.raises(ConfigError, match="search 'child' has no results yet"):
        best_point("child")


def test_best_point_of_a_child_needs_the_base_search_results(searches):
    write_trials(searches, "child", CHILD_TRIALS)
    with pytest.raises(ConfigError, match="search 'parent' has no results yet"):
        best_point("child")


def test_unknown_search(searches):
    with pytest.raises(ConfigError, match="unknown search 'no_such'.*'child', 'parent'"):
        best_point("no_such")
    with pytest.raises(ConfigError, match="unknown search 'no_such'"):
        search_spec("no_such")


def test_a_child_search_that_does_not_beat_its_base_keeps_the_base_point(searches):
    write_trials(searches, "parent", PARENT_TRIALS)
    write_trials(searches, "child", [(point, 0.44) for point, _ in CHILD_TRIALS])
    assert best_point("child") == best_point("parent")


def test_trial_row_averages_the_seeds_of_one_point():
    per_seed = [{"n_params": 10, "best_epoch": 4, "val_acc1": 0.5, "val_mrr": 0.6,
                 "train_seconds": 10.0},
                {"n_params": 10, "best_epoch": 7, "val_acc1": 0.4, "val_mrr": 0.5,
                 "train_seconds": 20.0}]
    row = trial_row({"lr": 0.01, "model.dim": 32}, per_seed)
    assert row["trial"] == '{"lr": 0.01, "model.dim": 32}'
    assert (row["lr"], row["model.dim"], row["seeds"], row["n_params"]) == (0.01, 32, 2, 10)
    assert row["best_epoch"] == 5.5 and row["train_seconds"] == 15.0
    assert row["val_acc1"] == pytest.approx(0.45) and row["val_mrr"] == pytest.approx(0.55)
