"""The book's generated tables, on hand-made metrics (nothing is written to book/)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import nextloc.core.paths
import nextloc.report.build
import nextloc.report.toc
from nextloc.report.build import format_setting, search_table, update_readme
from nextloc.report.headline import headline_sentence
from nextloc.report.verdicts import book_verdicts
from nextloc.report.tables import (deltas_table, full_table, markdown_table, mean_std,
                                   published_table, short_table)

# --- mean_std --------------------------------------------------------------------------------


def test_mean_std_of_one_value_has_no_spread():
    assert mean_std(pd.Series([0.2512])) == "25.12"


def test_mean_std_is_the_sample_std_in_percent():
    # mean 20 %, sample std (ddof=1) 10 %; the population std would be 8.16
    assert mean_std(pd.Series([0.1, 0.2, 0.3])) == "20.00\u00a0±\u00a010.00"


def test_mean_std_without_percent():
    assert mean_std(pd.Series([1.0, 3.0]), percent=False) == "2.00\u00a0±\u00a01.41"


def test_mean_std_ignores_missing_values():
    assert mean_std(pd.Series([0.5, np.nan])) == "50.00"
    assert mean_std(pd.Series([np.nan, np.nan])) == "–"
    assert mean_std(pd.Series([], dtype=float)) == "–"


# --- chapter and appendix tables -------------------------------------------------------------

def runs(experiment: str, n_params: int, test_acc1: list[float], **columns) -> pd.DataFrame:
    n = len(test_acc1)
    frame = {"experiment": [experiment] * n, "model": ["m"] * n, "seed": list(range(1, n + 1)),
             "n_params": [n_params] * n, "best_epoch": [10] * n, "val_acc1": [0.5] * n,
             "test_acc1": test_acc1, "test_acc5": [0.6] * n, "test_acc10": [0.7] * n,
             "test_mrr": [0.4] * n, "test_ndcg10": [0.45] * n, "test_f1": [0.2] * n,
             "train_seconds": [60.0] * n, "device": ["cpu"] * n}
    frame.update(columns)
    return pd.DataFrame(frame)


EXPERIMENTS = {"a": {"seeds": [1, 2, 3], "prior_report_acc1": 0.3795},
               "b": {"seeds": [1, 2], "refit": True},
               "rule": {"seeds": [1]},
               "ens": {"seeds": [1, 2], "model.members": ["x", "y"]},
               "later": {"seeds": [1, 2, 3]}}
METRICS = pd.concat([
    runs("a", 480_123, [0.30, 0.40, 0.35], best_epoch=[8, 12, 9]),
    runs("b", 1_234, [0.25, 0.20], val_acc1=[np.nan, np.nan], train_seconds=[10.0, 20.0]),
    runs("rule", 0, [0.42], best_epoch=[0], train_seconds=[0.0]),
    runs("ens", 960_000, [0.37, 0.38], best_epoch=[0, 0], train_seconds=[0.0, 0.0]),
], ignore_index=True)


def test_short_table_has_the_six_columns_and_says_what_is_missing():
    table = short_table(METRICS, ["a", "b", "rule", "later"], EXPERIMENTS).set_index("experiment")
    assert list(table.columns) == ["how", "parameters", "seeds", "Acc@1 %",
                                   "known places Acc@1 %", "Acc@5 %", "MRR %"]
    assert table.loc["`a`", "Acc@1 %"] == "35.00\u00a0±\u00a05.00"
    assert table.loc["`a`", "parameters"] == "480,123"
    assert table.loc["`b`", "how"] == "B: refit on train + val"
    assert table.loc["`rule`", "how"] == "counting rule"
    assert table.loc["`later`", "Acc@1 %"] == "not run yet"
    assert table.loc["`later`", "seeds"] == "0 of 3"


def test_short_table_shows_known_place_accuracy_only_when_every_seed_has_it():
    metrics = pd.concat([runs("a", 10, [0.30, 0.40, 0.35], test_acc1_known=[0.40, 0.50, 0.60]),
                         runs("b", 10, [0.25, 0.20], test_acc1_known=[0.3, np.nan])],
                        ignore_index=True)
    table = short_table(metrics, ["a", "b", "rule"], EXPERIMENTS).set_index("experiment")
    assert table.loc["`a`", "known places Acc@1 %"] == "50.00\u00a0±\u00a010.00"
    assert table.loc["`b`", "known places Acc@1 %"] == "–"        # one seed not filled yet
    assert table.loc["`rule`", "known places Acc@1 %"] == "not run yet"
    # a table read before the column existed (METRICS has no such column)
    assert short_table(METRICS, ["a"], EXPERIMENTS)["known places Acc@1 %"].iloc[0] == "–"


def test_full_table_writes_no_nan_and_says_why_a_cell_is_empty():
    table = full_table(METRICS, ["a", "b", "rule", "ens", "later"], EXPERIMENTS)
    table = table.set_index("experiment")
    text = markdown_table(table.reset_index())
    assert "nan" not in text.lower()
    assert "`later`" not in table.index                      # no runs, no row
    assert table.loc["`b`", "val Acc@1 %"] == "n/a: val is training data"
    assert table.loc["`b`", "best epoch (median)"] == "n/a: fixed epochs"
    assert table.loc["`rule`", "best epoch (median)"] == "n/a: no training"
    assert table.loc["`ens`", "best epoch (median)"] == "n/a: no training"
    assert table.loc["`a`", "best epoch (median)"] == "9"
    assert table.loc["`a`", "prior report Acc@1 %"] == "37.95"
    assert table.loc["`b`", "prior report Acc@1 %"] == "did not run it"
    assert table.loc["`a`", "test Acc@1 min–max %"] == "30.00–40.00"
    assert table.loc["`b`", "train min (mean)"] == "0.2"


def test_deltas_use_paired_intervals_on_shared_seeds():
    metrics = pd.concat([runs("full", 10, [0.50, 0.50, 0.50, 0.10, 0.90]),
                         runs("ablated", 10, [0.40, 0.41, 0.39])], ignore_index=True)
    registry = {"experiments": {}, "tables": {"x_ablation": ["full", "ablated"]}}
    book = book_verdicts(metrics, registry)
    row = deltas_table(metrics, ["full", "ablated"], book.ablations["x_ablation"]).iloc[0]
    assert row["seeds"] == 3
    # differences -10, -9, -11: mean -10, sd 1, half-width 4.302653 / sqrt(3) = 2.484138
    assert row["test change, points [95 % CI]"] == "-10.00 [-12.48, -7.52]"
    # t = -10 / (1 / sqrt 3) = -17.32 on 2 df: p = 0.003316, the only test of the family
    assert row["q"] == "0.003"
    assert row["test verdict"] == "differs"


def test_published_rows_say_not_verified_and_mark_refits():
    registry = {"experiments": {"baseline": {"prior_report_acc1": 0.3795},
                                "pointer_pair_refit": {"refit": True}},
                "headline": {"train_only": "pointer_pair", "refit": "pointer_pair_refit"},
                "published": [{"method": "M", "source": "key", "acc1": None, "where": "w",
                               "protocol": "p"},
                              {"method": "L", "source": None, "acc1": 45.13, "where": "w",
                               "protocol": "p"}]}
    metrics = runs("pointer_pair_refit", 1, [0.58, 0.59])
    table = published_table(metrics, registry).set_index("method")
    assert table.loc["M", "test Acc@1 %"] == "not verified"
    assert table.loc["M", "source"] == "{cite:t}`key`"
    assert table.loc["L", "test Acc@1 %"] == "45.13"
    assert table.loc["L", "source"] == "none found"
    assert "**validation**" in table.loc["`pointer_pair_refit`", "protocol"]


def test_markdown_table_has_header_rule_and_rows():
    frame = pd.DataFrame({"experiment": ["a", "b"], "seeds": [3, 2], "Acc@1 %": ["1.00", "–"]})
    assert markdown_table(frame) == ("| experiment | seeds | Acc@1 % |\n"
                                     "|---|---|---|\n"
                                     "| a | 3 | 1.00 |\n"
                                     "| b | 2 | – |\n")


def test_markdown_table_of_no_rows_is_header_and_rule():
    assert markdown_table(pd.DataFrame(columns=["x"])) == "| x |\n|---|\n"
    assert markdown_table(pd.DataFrame(columns=["x"]), empty="none\n") == "none\n"


# --- search steps, headline, README ----------------------------------------------------------

def test_search_table_is_chronological_and_marks_the_selection(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", tmp_path)
    (tmp_path / "search").mkdir()
    pd.DataFrame({"trial": ['{"d": 64}', '{"d": 96}'], "model.d": [64.0, 96.0],
                  "mask": [np.nan, 0.5], "n_params": [1000.0, 2000.0], "best_epoch": [3.0, 4.0],
                  "val_acc1": [0.40, 0.45], "val_mrr": [0.5, 0.55], "train_seconds": [1.0, 2.0]}
                 ).to_csv(tmp_path / "search" / "base.csv", index=False)
    pd.DataFrame({"trial": ['{"e": 1}'], "e": [1.0], "seeds": [3.0], "n_params": [3000.0],
                  "best_epoch": [5.333], "val_acc1": [0.44], "val_mrr": [0.5],
                  "train_seconds": [3.0]}).to_csv(tmp_path / "search" / "child.csv", index=False)
    registry = {"searches": {"base": {"space": {"model.d": [64, 96], "mask": [None, 0.5]}},
                             "child": {"base_search": "base", "points": [{"e": 1}]}}}
    monkeypatch.setattr(nextloc.report.build, "earlier_point", lambda name: {"model.d": 96})
    monkeypatch.setattr(nextloc.report.build, "earlier_trial", lambda name: pd.read_csv(
        tmp_path / "search" / f"{name}.csv").iloc[1])

    base = search_table("base", registry)
    assert list(base["trial"]) == ["1", "2"]                 # the order the trials ran
    assert list(base["mask"]) == ["off", "0.5"]              # no nan
    assert list(base["model.d"]) == ["64", "96"]             # integers as integers
    assert list(base["selected"]) == ["", "**selected**"]
    assert list(base["val Acc@1 %"]) == ["40.00", "45.00"]

    child = search_table("child", registry)
    assert list(child["trial"]) == ["earlier step's choice", "1"]
    assert list(child["e"]) == ["not set", "1"]
    assert list(child["selected"]) == ["**selected**", ""]   # 45 % stays ahead of 44 %
    assert list(child["best epoch"]) == ["4", "5.3"]

    # The same step on another dataset: the earlier choice's score (another dataset's) is not
    # the point to beat, and not a row.
    registry["searches"]["child"]["dataset"] = "city"
    city = search_table("child", registry)
    assert list(city["trial"]) == ["1"] and list(city["selected"]) == ["**selected**"]


def test_a_pruned_trial_shows_the_seeds_it_finished_and_no_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", tmp_path)
    (tmp_path / "search").mkdir()
    pd.DataFrame({"trial": ['{"lr": 0.1}', '{"lr": 0.2}'], "lr": [0.0009781801964, 0.002],
                  "seeds": [3, 1], "n_params": [100.0, np.nan], "best_epoch": [4.0, np.nan],
                  "val_acc1": [0.5, np.nan], "val_mrr": [0.6, np.nan],
                  "state": ["COMPLETE", "PRUNED"]}
                 ).to_csv(tmp_path / "search" / "tpe.csv", index=False)
    table = search_table("tpe", {"searches": {"tpe": {"space": {"lr": {"low": 1e-4,
                                                                       "high": 1e-2}}}}})
    assert list(table["lr"]) == ["0.000978", "0.002"]        # three significant digits
    assert list(table["seeds"]) == ["3", "pruned (1)"]
    assert list(table["val Acc@1 %"]) == ["50.00", "–"]
    assert list(table["parameters"]) == ["100", "–"]
    assert list(table["selected"]) == ["**selected**", ""]


def test_a_list_of_run_checkpoints_prints_as_the_runs_it_names():
    teacher = [f"{{checkpoints}}/pair/seed_{seed}.safetensors" for seed in (42, 123, 7)]
    assert format_setting(teacher, False) == "3 runs of pair"
    assert (format_setting(teacher[:1] + ["{checkpoints}/other/seed_9.safetensors"], False)
            == "1 run of pair; 1 run of other")
    assert format_setting(["user", "time"], False) == "[user, time]"
    assert format_setting(["{checkpoints}/pair/last.safetensors"], False).startswith("[")
    assert format_setting(str(teacher), False) == "3 runs of pair"  # as the trials table has it
    assert format_setting(teacher[0] + " and more", False).endswith("and more")


def test_headline_sentence_names_both_protocols():
    metrics = pd.concat([runs("pointer_pair", 388_552, [0.56, 0.57]),
                         runs("pointer_pair_refit", 388_552, [0.58, 0.59]),
                         runs("baseline", 480_059, [0.35, 0.37])], ignore_index=True)
    registry = {"headline": {"train_only": "pointer_pair", "refit": "pointer_pair_refit"}}
    sentence = headline_sentence(metrics, registry)
    assert "`pointer_pair` (388,552 parameters)" in sentence
    assert "56.50\u00a0±\u00a00.71 %" in sentence and "58.50\u00a0±\u00a00.71 %" in sentence
    assert "36.00\u00a0±\u00a01.41 %" in sentence
    assert (headline_sentence(metrics.iloc[:2], registry)
            == "The headline runs have not finished yet.")
    assert "names no headline" in headline_sentence(metrics, {"experiments": {}})


def test_update_readme_replaces_only_the_marked_block(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    start, end = nextloc.report.build.README_MARKERS
    (tmp_path / "README.md").write_text(f"intro\n{start}\nold\n{end}\nrest\n")
    update_readme("new sentence")
    assert (tmp_path / "README.md").read_text() == f"intro\n{start}\nnew sentence\n{end}\nrest\n"


def test_timing_counts_search_seeds_and_run_overhead(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    (tmp_path / "search").mkdir()
    pd.DataFrame({"trial": ["x", "y"], "seeds": [3.0, 3.0], "train_seconds": [10.0, 20.0]}
                 ).to_csv(tmp_path / "search" / "s.csv", index=False)
    page = tmp_path / "book" / "runs" / "a" / "seed_1.ipynb"
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps({"metadata": {"papermill": {"duration": 67.0,
                                                           "parameters": {"train": True}}}}))
    metrics = runs("a", 10, [0.3, 0.4], train_seconds=[60.0, 50.0])
    table, overhead = nextloc.report.build.timing_table(metrics, {"searches": {"s": {}},
                                                            "experiments": {"a": {}}})
    assert overhead == pytest.approx(7.0)                    # 67 s page - 60 s of training
    assert table.set_index("step")["seconds"].to_dict() == pytest.approx(
        {"`nextloc search s`": 90.0, "`nextloc run`: `a`": 124.0})


# --- the table of contents -------------------------------------------------------------------

def test_toc_keeps_only_run_folders_that_hold_notebooks(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    (tmp_path / "book" / "runs" / "done").mkdir(parents=True)
    (tmp_path / "book" / "runs" / "done" / "seed_1.ipynb").write_text("{}")
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro", "parts": [{"caption": "c", "chapters": [
            {"file": "book/a", "sections": [{"glob": "book/runs/done/*"},
                                            {"glob": "book/runs/missing/*"}]},
            {"file": "book/b", "sections": [{"glob": "book/runs/missing/*"}]}]}]}))

    toc = nextloc.report.toc.write_toc({"experiments": {"done": {}}})
    chapters = yaml.safe_load(toc.read_text())["parts"][0]["chapters"]

    assert chapters == [{"file": "book/a", "sections": [
                            {"file": "book/runs/done/index",
                             "sections": [{"file": "book/runs/done/seed_1"}]}]},
                        {"file": "book/b"}]
    assert "{doc}`1 <seed_1>`" in (tmp_path / "book" / "runs" / "done" / "index.md").read_text()


def test_toc_groups_runs_by_experiment_with_seeds_in_numeric_order(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    seeds = [31337, 7, 2024, 42, 123]
    for name in ("a_x", "b_x"):
        (tmp_path / "book" / "runs" / name).mkdir(parents=True)
        for seed in seeds:
            (tmp_path / "book" / "runs" / name / f"seed_{seed}.ipynb").write_text("{}")
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro", "parts": [{"caption": "c", "chapters": [
            {"file": "book/a", "sections": [{"glob": "book/runs/*_x/*"},
                                            {"glob": "book/runs/a_x/*"}]}]}]}))

    experiments = {"b_x": {"description": "the second"}, "a_x": {"description": "the first"}}
    toc = yaml.safe_load(nextloc.report.toc.write_toc({"experiments": experiments}).read_text())
    chapter = toc["parts"][0]["chapters"][0]

    assert [entry["file"] for entry in chapter["sections"]] == [
        "book/runs/a_x/index", "book/runs/b_x/index"]               # each experiment once
    assert [entry["file"] for entry in chapter["sections"][0]["sections"]] == [
        f"book/runs/a_x/seed_{seed}" for seed in (7, 42, 123, 2024, 31337)]
    page = (tmp_path / "book" / "runs" / "b_x" / "index.md").read_text()
    assert page.startswith("# `b_x`\n\nThe second.")
    assert page.index("`7 <seed_7>`") < page.index("`42 <seed_42>`") < page.index("`123 <")


def test_the_registry_places_analyses_and_runs_under_their_chapter(tmp_path, monkeypatch):
    from nextloc.report.toc import book_toc

    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "x",
        "parts": [{"caption": "A", "chapters": [{"file": "book/a"}, {"file": "book/b"}]}]}))
    toc = book_toc({"analyses": {"look": {"title": "t"}}, "book": {"book/a": ["look", "x_*"]}})
    assert toc["parts"][0]["chapters"] == [
        {"file": "book/a", "sections": [{"file": "book/runs/look"}, {"glob": "book/runs/x_*/*"}]},
        {"file": "book/b"}]


def test_every_analysis_and_every_run_has_a_place_in_the_table_of_contents():
    from nextloc.experiments.registry import load_registry
    from nextloc.report.toc import book_toc, toc_entries, unplaced_experiments

    registry = load_registry()
    toc = book_toc(registry)
    files = {entry["file"] for part in toc["parts"] for entry in toc_entries(part["chapters"])
             if "file" in entry}
    missing = [name for name in registry.get("analyses", {})
               if f"book/runs/{name}" not in files]
    assert missing == [], f"add these analyses to the book: section of their chapter: {missing}"
    unplaced = unplaced_experiments(toc, registry["experiments"])
    assert unplaced == [], "these runs would land in 'Other runs'"


def test_runs_missing_from_the_toc_go_to_an_other_runs_part(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "PROJECT_ROOT", tmp_path)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "x",
        "parts": [{"caption": "A", "chapters": [{"file": "book/a", "sections": [
            {"glob": "book/runs/placed/*"}]}]}]}))
    for name in ("placed", "new_model"):
        (tmp_path / "book" / "runs" / name).mkdir(parents=True)
        (tmp_path / "book" / "runs" / name / "seed_1.ipynb").write_text("{}")

    written = nextloc.report.toc.write_toc({"experiments": {
        "placed": {"seeds": [1]}, "new_model": {"seeds": [1]}, "not_run": {"seeds": [1]}}})
    toc = yaml.safe_load(written.read_text())

    assert toc["parts"][-1] == {"caption": "Other runs", "chapters": [
        {"file": "book/other_runs", "sections": [{"file": "book/runs/new_model/index",
                                                  "sections": [
                                                      {"file": "book/runs/new_model/seed_1"}]}]}]}


def test_every_claim_names_experiments_the_book_can_place():
    """A typo in a claim's experiment name would leave it pending forever."""
    from fnmatch import fnmatch

    from nextloc.report.claims import parse_arm
    from nextloc.experiments.registry import load_registry
    from nextloc.report.toc import book_toc, toc_entries

    registry = load_registry()
    globs = [entry["glob"] for part in book_toc(registry)["parts"]
             for entry in toc_entries(part["chapters"]) if "glob" in entry]
    for claim in registry["claims"]:
        for entry in claim["arms"]:
            arm = parse_arm(entry, claim.get("expect", "higher"))
            for name in arm.experiments():
                assert any(fnmatch(f"book/runs/{name}/seed_1", g) for g in globs), name


def test_refits_and_combinations_of_refits_have_no_out_of_sample_validation():
    from nextloc.report.tables import out_of_sample, validation_in_sample

    experiments = {"a": {}, "a_refit": {"refit": True},
                   "teacher": {"model.members": ["{checkpoints}/a_refit/seed_1.safetensors"]},
                   "plain_teacher": {"model.members": ["{checkpoints}/a/seed_1.safetensors"]}}
    assert [validation_in_sample(n, experiments) for n in experiments] == [False, True, True,
                                                                             False]
    metrics = pd.DataFrame({"experiment": list(experiments), "val_acc1": [0.5, 0.9, 0.9, 0.6]})
    assert out_of_sample(metrics, experiments)["val_acc1"].isna().tolist() == [False, True, True,
                                                                                False]


def test_appendix_lists_at_most_ten_differences_and_says_how_many_in_all():
    from nextloc.report.appendix import listed

    assert listed([1.0, -0.25]) == "+1.0, -0.2"
    long = listed([0.5] * 77)
    assert long.count("+0.5") == 10 and long.endswith("… (77 in all)")
