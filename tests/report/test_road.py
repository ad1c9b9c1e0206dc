"""The road to the headline: gains on searched and unseen seeds, missed targets, optimism and the
headline sentence, against values computed by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from nextloc.report.headline import headline_sentence
from nextloc.report.road import missed_targets, road_rows, road_table, selection_optimism, val_gain


def runs(name, seeds, val, test, n_params=100):
    return pd.DataFrame({"experiment": name, "seed": seeds, "val_acc1": val, "test_acc1": test,
                         "n_params": n_params, "train_seconds": 60.0, "best_epoch": 3})


METRICS = pd.concat([
    runs("old", [42, 123, 7, 2024, 31337], [0.50, 0.50, 0.50, 0.50, 0.50],
         [0.40, 0.41, 0.42, 0.43, 0.44]),
    runs("new", [42, 123, 7, 2024, 31337], [0.52, 0.52, 0.52, 0.505, 0.505],
         [0.41, 0.42, 0.43, 0.44, 0.45]),
    runs("new_c", [101, 202], [0.51, 0.51], [0.45, 0.45]),
    runs("old_c", [101, 202], [0.505, 0.505], [0.44, 0.44]),
], ignore_index=True)

REGISTRY = {
    "experiments": {},
    "searches": {"s": {"seed": 42, "seeds": [42, 123, 7]}},
    "road": [{"step": "6", "change": "something", "searches": [], "experiment": "new",
              "before": "old", "confirmation": ["new_c", "old_c"]}],
    "targets": [{"experiment": "old", "metric": "test_acc1", "at_least": 0.5},
                {"experiment": "old_refit", "metric": "test_acc1", "at_least": 0.3}],
}


def test_gains_on_searched_and_unseen_seeds():
    assert val_gain(METRICS, "new", "old", {42, 123, 7}) == (pytest.approx(2.0), 3)
    assert val_gain(METRICS, "new", "old", {2024, 31337}) == (pytest.approx(0.5), 2)
    assert val_gain(METRICS, "new", "old", {99}) is None


def test_a_step_row_and_the_optimism():
    [row] = road_rows(METRICS, REGISTRY)
    assert row["searched"][0] == pytest.approx(2.0)
    assert row["fresh"][0] == pytest.approx(0.5)
    assert row["confirmation"][0] == pytest.approx(0.5)
    assert row["test"].mean == pytest.approx(1.0)          # new − old, always
    searched, fresh, counted = selection_optimism([row])
    assert (searched, fresh, counted) == (pytest.approx(2.0), pytest.approx(0.5), 1)
    table = road_table([row])
    assert table.loc[0, "val gain, search seeds"] == "+2.00 (3 seeds)"


def test_missed_targets_name_the_protocol():
    # old's mean test Acc@1 is 42 %, under its 50 % target; no old_refit runs
    assert missed_targets(METRICS, REGISTRY, "old") == ["Acc@1 ≥ 50 % (A)"]
    assert missed_targets(METRICS, REGISTRY, "new") == []


def test_headline_sentence_states_known_places_and_confirmation():
    metrics = pd.concat([runs("h", [1, 2], [0.5, 0.5], [0.56, 0.58]).assign(
                             test_acc1_known=[0.70, 0.72]),
                         runs("h_refit", [1, 2], [None, None], [0.58, 0.60]).assign(
                             test_acc1_known=[0.7, 0.7]),
                         runs("baseline", [1, 2], [0.4, 0.4], [0.35, 0.37]).assign(
                             test_acc1_known=[0.45, 0.47])], ignore_index=True)
    registry = {"headline": {"train_only": "h", "refit": "h_refit",
                             "confirmation_seeds": [1, 2], "frozen_at": "abc1234"}}
    sentence = headline_sentence(metrics, registry)
    assert "frozen at commit abc1234" in sentence and "on 2 seeds no run" in sentence
    assert "known places" in sentence and "71.00\u00a0±\u00a01.41 %" in sentence


def test_an_unfinished_refit_confirmation_is_said_so_beside_the_search_era_figure():
    metrics = pd.concat([runs("h", [1, 2], [0.5, 0.5], [0.56, 0.58]),
                         runs("h_refit", [1], [None], [0.58]),
                         runs("era_refit", [5, 6], [None, None], [0.59, 0.61]),
                         runs("baseline", [1, 2], [0.4, 0.4], [0.35, 0.37])], ignore_index=True)
    registry = {"experiments": {"h_refit": {"seeds": [1, 2]}},
                "headline": {"train_only": "h", "refit": "h_refit",
                             "search_era": {"train_only": "era", "refit": "era_refit"}}}
    sentence = headline_sentence(metrics, registry)
    assert "1 of its 2 confirmation runs refit" in sentence
    assert "search-era refit of the same configuration reached 60.00\u00a0±\u00a01.41 %" \
        in sentence
