"""Search configuration: the Optuna space, the best point the experiments take from the
results, and the committed tables that fix today's headline. Nothing here trains; the results
are hand-written CSVs in tmp_path (the workers are tested in test_search_workers.py)."""
from __future__ import annotations

import json
import os

import optuna
import pandas as pd
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from project_tools import registry_file

import nextloc.core.paths
from nextloc.search import study as studies
from nextloc.core.errors import ConfigError, DataError
from nextloc.experiments.registry import best_point, chosen_trial, experiment_settings, search_spec
from nextloc.search.run import make_plan, sampler_seeds, trial_row


def key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


# --- the committed searches ------------------------------------------------------------------

FEATURES = ["user", "time", "duration", "recency", "frequency"]
TODAY_POINTER = {"batch_size": 32, "epochs": 50, "label_smoothing": 0.1, "lr": 0.001,
                 "mask_new_locations_after": 0.5, "model": "pointer", "model.dim": 64,
                 "model.dropout": 0.3, "model.features": FEATURES, "patience": 5,
                 "weight_decay": 0.01}


def test_the_committed_search_tables_give_todays_headline_configuration():
    """results/search/*.csv decide the experiments' settings: moving the search to Optuna must
    not move them."""
    assert experiment_settings("pointer") == TODAY_POINTER
    assert experiment_settings("pointer_pair") == {**TODAY_POINTER, "model": "pointer_ensemble",
                                                   "model.size": 2}


# --- the space -------------------------------------------------------------------------------

def test_a_list_is_a_categorical_choice_and_lists_travel_as_json():
    dist = studies.distribution("model.features", [["user"], ["user", "time"], None])
    assert dist == CategoricalDistribution(['["user"]', '["user", "time"]', None])
    assert studies.decode([["user"], ["user", "time"]], '["user", "time"]') == ["user", "time"]
    assert studies.decode([0.5, None], None) is None


def test_ranges_are_int_or_float_distributions():
    assert studies.distribution("model.dim", {"low": 32, "high": 128, "step": 32}) == \
        IntDistribution(32, 128, step=32)
    assert studies.distribution("lr", {"low": 1e-4, "high": 1e-2, "log": True}) == \
        FloatDistribution(1e-4, 1e-2, log=True)


@pytest.mark.parametrize("values", [[1, 1], [], "abc", {"low": 1}])
def test_a_bad_space_entry_is_a_config_error(values):
    with pytest.raises(ConfigError, match="search space 'x'"):
        studies.distribution("x", values)


def test_a_point_keeps_what_the_space_cannot_hold_fixed():
    space = studies.space_distributions({"lr": [0.001, 0.002], "model.dim": {"low": 8,
                                                                              "high": 64}})
    params, fixed = studies.split_point({"lr": 0.003, "model.dim": 16, "model": "x"}, space)
    assert params == {"model.dim": 16}
    assert fixed == {"lr": 0.003, "model": "x"}


# --- best_point ------------------------------------------------------------------------------

REGISTRY = {"experiments": {}, "searches": {
    "parent": {"seed": 0, "trials": 3, "base": {"model": "pointer", "epochs": 20, "patience": 5},
               "space": {"lr": [0.001, 0.002], "model.dim": [64, 96]}},
    "child": {"base_search": "parent", "seed": 0, "seeds": [1, 2], "trials": 2,
              "base": {"model": "pointer", "patience": 3},
              "space": {"lr": [0.01, 0.02], "model.features": [["user"], ["user", "time"]]}},
    "listed": {"seed": 0, "base": {"model": "pointer"},
               "points": [{"model.dim": 8}, {"model.dim": 16, "lr": 0.01}]},
}}


@pytest.fixture
def searches(tmp_path, monkeypatch):
    path = registry_file(tmp_path)
    path.write_text(yaml.safe_dump(REGISTRY))
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", path.parent)
    monkeypatch.setattr(nextloc.core.paths, "SEARCH_DIR", tmp_path / "results" / "search")
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


def test_a_step_must_beat_the_point_its_base_chose_not_the_bases_own_best_trial(searches,
                                                                             monkeypatch):
    # parent chooses 0.45; child's trials (0.43, 0.44) do not beat it, so child keeps parent's
    # point; grandchild's 0.445 beats child's own best trial (0.44) but not child's choice.
    registry = {**REGISTRY, "searches": {**REGISTRY["searches"], "grandchild": {
        "base_search": "child", "seed": 0, "base": {"model": "pointer"},
        "points": [{"model.dropout": 0.3}]}}}
    (nextloc.core.paths.REGISTRY_DIR / "main.yaml").write_text(yaml.safe_dump(registry))
    write_trials(searches, "parent", PARENT_TRIALS)
    write_trials(searches, "child", [(point, acc1 - 0.03) for point, acc1 in CHILD_TRIALS])
    write_trials(searches, "grandchild", [({"model.dropout": 0.3}, 0.445)])
    assert chosen_trial("child")["val_acc1"] == 0.45
    assert best_point("grandchild") == best_point("child") == best_point("parent")
    write_trials(searches, "grandchild", [({"model.dropout": 0.3}, 0.46)])
    assert best_point("grandchild") == {**best_point("parent"), "model.dropout": 0.3}
    assert chosen_trial("grandchild")["val_acc1"] == 0.46


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
    with pytest.raises(ConfigError, match="unknown search 'no_such'.*'child', 'listed', 'parent'"):
        best_point("no_such")
    with pytest.raises(ConfigError, match="unknown search 'no_such'"):
        search_spec("no_such")


def test_a_child_search_that_does_not_beat_its_base_keeps_the_base_point(searches):
    write_trials(searches, "parent", PARENT_TRIALS)
    write_trials(searches, "child", [(point, 0.44) for point, _ in CHILD_TRIALS])
    assert best_point("child") == best_point("parent")


def another_city(registry_dir, points=({}, {"lr": 0.01})) -> None:
    """The registry plus a search on dataset ``city`` that starts from ``parent``'s point."""
    registry = {**REGISTRY, "searches": {**REGISTRY["searches"], "city": {
        "dataset": "city", "base_search": "parent", "seed": 0, "base": {"model": "pointer"},
        "points": list(points)}}}
    (registry_dir / "main.yaml").write_text(yaml.safe_dump(registry))


def test_a_search_on_another_dataset_takes_the_base_settings_but_not_its_score(searches):
    another_city(nextloc.core.paths.REGISTRY_DIR)
    write_trials(searches, "parent", PARENT_TRIALS)            # Geolife's choice scores 0.45
    write_trials(searches, "city", [({}, 0.27), ({"lr": 0.01}, 0.28)])
    # Scores of two datasets do not compare: the city's best trial wins although 0.28 < 0.45.
    assert chosen_trial("city")["val_acc1"] == 0.28
    assert best_point("city") == {**best_point("parent"), "lr": 0.01}
    write_trials(searches, "city", [({}, 0.29), ({"lr": 0.01}, 0.28)])
    assert best_point("city") == best_point("parent")          # `{}`: the base point as it is


def test_a_search_trains_on_its_dataset_folder_or_says_it_is_missing(searches, tmp_path,
                                                                      monkeypatch):
    another_city(nextloc.core.paths.REGISTRY_DIR)
    write_trials(searches, "parent", PARENT_TRIALS)
    report_data = tmp_path / "data" / "geolife"
    report_data.mkdir(parents=True)
    monkeypatch.setenv("NEXTLOC_DATA", str(report_data))
    with pytest.raises(DataError, match="search 'city': dataset 'city' not found at "):
        make_plan("city")
    (tmp_path / "data" / "city").mkdir()
    assert make_plan("city").data == str(tmp_path / "data" / "city")
    assert make_plan("parent").data is None                    # the report's own data


def test_a_search_dataset_must_be_a_folder_name(searches):
    another_city(nextloc.core.paths.REGISTRY_DIR)
    path = nextloc.core.paths.REGISTRY_DIR / "main.yaml"
    path.write_text(path.read_text().replace("dataset: city", "dataset: ../elsewhere"))
    with pytest.raises(ConfigError, match="search 'city': dataset must name a data folder"):
        search_spec("city")


def test_the_budget_is_the_trials_within_the_grid_and_at_least_the_points(searches):
    write_trials(searches, "parent", PARENT_TRIALS)  # the child builds on the parent's best
    assert make_plan("parent").budget == 3
    assert make_plan("child").budget == 2
    assert make_plan("listed").budget == 2


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


def test_a_worker_joining_a_running_search_draws_its_own_sampler_seeds():
    study = optuna.create_study(direction="maximize")
    assert sampler_seeds(study, 7, 2, shared=False) == [7, 8]
    assert sampler_seeds(study, 7, 2, shared=True) == [7 + os.getpid(), 8 + os.getpid()]
    study.ask()  # another worker's trial, still running
    assert sampler_seeds(study, 7, 1, shared=False) == [7 + os.getpid()]
