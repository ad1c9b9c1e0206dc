"""The book's generated tables, on hand-made metrics (nothing is written to book/)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import nextloc.paths
import nextloc.report
import nextloc.toc
from nextloc.report import (difference_and_spread, markdown_table, mean_std, on_shared_seeds,
                            summarize, verdict)

# --- mean_std --------------------------------------------------------------------------------


def test_mean_std_of_one_value_has_no_spread():
    assert mean_std(pd.Series([0.2512])) == "25.12"


def test_mean_std_is_the_sample_std_in_percent():
    # mean 20 %, sample std (ddof=1) 10 %; the population std would be 8.16
    assert mean_std(pd.Series([0.1, 0.2, 0.3])) == "20.00 ± 10.00"


def test_mean_std_without_percent():
    assert mean_std(pd.Series([1.0, 3.0]), percent=False) == "2.00 ± 1.41"


def test_mean_std_ignores_missing_values():
    assert mean_std(pd.Series([0.5, np.nan])) == "50.00"
    assert mean_std(pd.Series([np.nan, np.nan])) == "–"
    assert mean_std(pd.Series([], dtype=float)) == "–"


# --- verdict ---------------------------------------------------------------------------------

BETTER = pd.Series([0.40, 0.41, 0.42])       # mean 41 %, std 1 point
REFERENCE = pd.Series([0.30, 0.32, 0.34])    # mean 32 %, std 2 points


@pytest.mark.parametrize("runs, reference, expected, outcome", [
    (BETTER, REFERENCE, "better", "confirmed"),
    (BETTER, REFERENCE, "worse", "refuted"),
    (REFERENCE, BETTER, "worse", "confirmed"),
    (REFERENCE, BETTER, "better", "refuted"),
])
def test_verdict_by_the_sign_of_a_clear_difference(runs, reference, expected, outcome):
    summary, result = verdict(runs, reference, expected)
    assert result == outcome
    sign = "+" if runs is BETTER else "-"
    assert summary == f"{sign}9.00 (spread 2.00)"


@pytest.mark.parametrize("expected", ["better", "worse"])
@pytest.mark.parametrize("swap", [False, True])
def test_verdict_within_the_larger_std_is_seed_noise(expected, swap):
    # 1.5 points apart: more than the smaller std (1), within the larger (2)
    runs, reference = pd.Series([0.325, 0.335, 0.345]), REFERENCE
    if swap:
        runs, reference = reference, runs
    summary, result = verdict(runs, reference, expected)
    assert result == "not distinguishable from seed noise"
    assert summary.endswith("(spread 2.00)")


# --- summarize -------------------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path, monkeypatch):
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump({"experiments": {
        "a": {"model": "baseline", "seeds": [1, 2, 3], "prior_report_acc1": 0.3795},
        "b": {"model": "pointer", "seeds": [1, 2]},
    }}))
    monkeypatch.setattr(nextloc.paths, "REGISTRY_FILE", path)


def runs(experiment: str, n_params: int, test_acc1: list[float], **columns) -> pd.DataFrame:
    n = len(test_acc1)
    frame = {"experiment": [experiment] * n, "model": ["m"] * n, "seed": list(range(1, n + 1)),
             "n_params": [n_params] * n, "best_epoch": [10] * n, "val_acc1": [0.5] * n,
             "test_acc1": test_acc1, "test_acc5": [0.6] * n, "test_acc10": [0.7] * n,
             "test_mrr": [0.4] * n, "test_ndcg10": [0.45] * n, "test_f1": [0.2] * n,
             "train_seconds": [60.0] * n, "device": ["cpu"] * n}
    frame.update(columns)
    return pd.DataFrame(frame)


def test_summarize_gives_one_row_per_experiment(registry):
    metrics = pd.concat([
        runs("a", 480_123, [0.30, 0.40, 0.35], best_epoch=[8, 12, 9]),
        runs("b", 1_234, [0.25, 0.20], val_acc1=[np.nan, np.nan], train_seconds=[10.0, 20.0]),
    ], ignore_index=True)
    table = summarize(metrics).set_index("experiment")

    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "seeds"] == 3 and table.loc["b", "seeds"] == 2
    assert table.loc["a", "test Acc@1 min–max"] == "30.00–40.00"
    assert table.loc["b", "test Acc@1 min–max"] == "20.00–25.00"
    assert table.loc["a", "Acc@1 %"] == "35.00 ± 5.00"
    assert table.loc["b", "Acc@1 %"] == "22.50 ± 3.54"
    assert table.loc["a", "parameters"] == "480,123"
    assert table.loc["a", "seed report Acc@1"] == "37.95"
    assert table.loc["b", "seed report Acc@1"] == "–"
    assert table.loc["b", "val Acc@1 %"] == "–"  # refits have no validation score
    assert table.loc["a", "val Acc@1 %"] == "50.00 ± 0.00"
    assert table.loc["a", "best epoch"] == "9"
    assert table.loc["b", "train s"] == "15"


def test_summarize_of_an_experiment_missing_from_the_registry(registry):
    table = summarize(runs("gone", 10, [0.3]))
    assert table.loc[0, "seed report Acc@1"] == "–"
    assert table.loc[0, "Acc@1 %"] == "30.00"


# --- markdown_table --------------------------------------------------------------------------

def test_markdown_table_has_header_rule_and_rows():
    frame = pd.DataFrame({"experiment": ["a", "b"], "seeds": [3, 2], "Acc@1 %": ["1.00", "–"]})
    assert markdown_table(frame) == ("| experiment | seeds | Acc@1 % |\n"
                                     "|---|---|---|\n"
                                     "| a | 3 | 1.00 |\n"
                                     "| b | 2 | – |\n")


def test_markdown_table_of_no_rows_is_header_and_rule():
    assert markdown_table(pd.DataFrame(columns=["x"])) == "| x |\n|---|\n"


def test_toc_keeps_only_run_folders_that_hold_notebooks(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.toc, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(nextloc.toc, "load_registry", lambda: {"experiments": {"done": {}}})
    (tmp_path / "book" / "runs" / "done").mkdir(parents=True)
    (tmp_path / "book" / "runs" / "done" / "seed_1.ipynb").write_text("{}")
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro", "parts": [{"caption": "c", "chapters": [
            {"file": "book/a", "sections": [{"glob": "book/runs/done/*"},
                                            {"glob": "book/runs/missing/*"}]},
            {"file": "book/b", "sections": [{"glob": "book/runs/missing/*"}]}]}]}))

    chapters = yaml.safe_load(nextloc.toc.write_toc().read_text())["parts"][0]["chapters"]

    assert chapters == [{"file": "book/a", "sections": [{"glob": "book/runs/done/*"}]},
                        {"file": "book/b"}]


def test_comparisons_use_only_the_seeds_both_experiments_have():
    metrics = pd.DataFrame({"experiment": ["full"] * 5 + ["ablated"] * 3,
                            "seed": [1, 2, 3, 4, 5, 1, 2, 3],
                            "test_acc1": [0.5, 0.5, 0.5, 0.1, 0.9, 0.4, 0.4, 0.4]})
    ablated, full = on_shared_seeds(metrics, "ablated", "full")
    assert list(full["seed"]) == [1, 2, 3]
    # On seeds 1-3 the full model is a steady 0.5: a 10-point loss, beyond a spread of 0.
    assert difference_and_spread(ablated["test_acc1"], full["test_acc1"]) == pytest.approx((-10, 0))


def test_every_analysis_and_every_run_has_a_place_in_the_table_of_contents():
    from nextloc.paths import PROJECT_ROOT
    from nextloc.registry import load_registry
    from nextloc.toc import toc_entries, unplaced_experiments

    toc = yaml.safe_load((PROJECT_ROOT / "book" / "toc.yml").read_text())
    files = {entry["file"] for part in toc["parts"] for entry in toc_entries(part["chapters"])
             if "file" in entry}
    missing = [name for name in load_registry().get("analyses", {})
               if f"book/runs/{name}" not in files]
    assert missing == [], f"add these analyses to book/toc.yml: {missing}"
    assert unplaced_experiments(toc) == [], "these runs would land in 'Other runs'"


def test_runs_missing_from_the_toc_go_to_an_other_runs_part(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.toc, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(nextloc.toc, "load_registry", lambda: {"experiments": {
        "placed": {"seeds": [1]}, "new_model": {"seeds": [1]}, "not_run": {"seeds": [1]}}})
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "x",
        "parts": [{"caption": "A", "chapters": [{"file": "book/a", "sections": [
            {"glob": "book/runs/placed/*"}]}]}]}))
    for name in ("placed", "new_model"):
        (tmp_path / "book" / "runs" / name).mkdir(parents=True)
        (tmp_path / "book" / "runs" / name / "seed_1.ipynb").write_text("{}")

    toc = yaml.safe_load(nextloc.toc.write_toc().read_text())

    assert toc["parts"][-1] == {"caption": "Other runs", "chapters": [
        {"file": "book/other_runs", "sections": [{"glob": "book/runs/new_model/*"}]}]}
