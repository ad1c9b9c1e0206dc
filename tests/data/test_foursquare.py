"""A second city (issue 26): datasets published as three split files (Foursquare NYC), the
``dataset`` column of results/metrics.csv, the registry's ``dataset:`` key, and a quick run on
the real Foursquare files (skipped where ../shared/data/fsq_nyc is absent)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import nextloc.core.paths
from conftest import make_staypoints
from project_tools import registry_file
from nextloc.cli import main
from nextloc.data.split import build_dataset, load_dataset, split_and_encode
from nextloc.core.errors import ConfigError, DataError
from nextloc.data.presplit import SUFFIXES, split_files
from nextloc.experiments.registry import load_registry
from nextloc.experiments.results import METRICS_COLUMNS, read_metrics, record_metrics
from test_split_and_samples import assert_data_equal

SHARED = nextloc.core.paths.PROJECT_ROOT.parent / "shared" / "data"
FSQ = SHARED / "fsq_nyc"
needs_fsq = pytest.mark.skipif(not FSQ.is_dir(), reason=f"{FSQ} is absent")


def split_folder(tmp_path, staypoints, name="city", drop=()):
    """The tiny staypoints written as three split files by our own split rule, no durations."""
    folder = tmp_path / name
    folder.mkdir()
    frame = split_and_encode(staypoints)
    for code, (split, suffix) in enumerate(SUFFIXES.items()):
        if split in drop:
            continue
        rows = frame[frame["split"] == code][["id", "user_id", "location_id", "start_day",
                                               "start_min", "weekday"]]
        rows.to_csv(folder / f"{name}{suffix}", index=False)
    return folder


# --- the loader ------------------------------------------------------------------------------

def test_published_split_files_give_the_samples_of_the_same_split(tmp_path):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints)
    loaded = load_dataset(folder, use_cache=False)
    expected = build_dataset(staypoints.assign(duration=0), staypoints["id"].to_numpy())
    assert_data_equal(loaded, expected)
    assert any("no duration" in note for note in loaded.notes)
    assert all((split.duration == 0).all() for split in loaded.splits.values())


def test_the_files_split_wins_over_the_day_rule(tmp_path):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints)
    train = folder / "city_train.csv"
    rows = pd.read_csv(train)
    moved = rows[rows["user_id"] == 1].tail(5)  # the last training days of user 1 -> validation
    rows.drop(moved.index).to_csv(train, index=False)
    valid = pd.concat([moved, pd.read_csv(folder / "city_valid.csv")])
    valid.to_csv(folder / "city_valid.csv", index=False)
    data = load_dataset(folder, use_cache=False)
    assert not np.isin(data.splits["train"].staypoint_id, moved["id"]).any()


def test_a_missing_split_file_is_one_line_and_exit_2(tmp_path, capsys):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints, drop=("test",))
    assert main(["data", "summary", "--data", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "city_test.csv: split file not found" in err


def test_split_files_of_two_datasets_are_refused(tmp_path):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints)
    (folder / "other_train.csv").write_text((folder / "city_train.csv").read_text())
    with pytest.raises(DataError, match="several datasets"):
        split_files(folder)


def test_ids_repeated_across_split_files_are_refused(tmp_path):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints)
    test = pd.read_csv(folder / "city_test.csv")
    test.loc[0, "id"] = int(pd.read_csv(folder / "city_train.csv")["id"].iloc[0])
    test.to_csv(folder / "city_test.csv", index=False)
    with pytest.raises(DataError, match="unique over the three split files"):
        load_dataset(folder, use_cache=False)


@pytest.mark.slow
@needs_fsq
def test_foursquare_counts_and_the_published_test_set():
    from nextloc.report.second_city import PUBLISHED_TEST_SAMPLES, RULES, sample_counts

    data = load_dataset(FSQ)
    assert {k: len(s) for k, s in data.splits.items()} == {"train": 51259, "validation": 12713,
                                                           "test": 13454}
    assert (data.num_locations, data.num_users) == (3818, 535)
    assert data.coordinates is None  # rescaled, not degrees: not used
    counts = sample_counts(FSQ)
    ours, published = list(RULES)
    assert counts.loc[ours, "test"] == 13454
    assert counts.loc[published, "test"] == PUBLISHED_TEST_SAMPLES == 12141


# --- the dataset column ------------------------------------------------------------------------

def row(experiment, seed, **changes):
    return {"experiment": experiment, "model": "persistent", "seed": seed, "n_params": 0,
            "best_epoch": 0, "val_acc1": 0.2, "test_acc1": 0.3, "test_acc5": 0.5,
            "test_acc10": 0.6, "test_mrr": 0.4, "test_ndcg10": 0.45, "test_f1": 0.2,
            "train_seconds": 1.0, "device": "cpu", "test_acc1_known": 0.35,
            "test_unseen_share": 0.1, **changes}


def test_rows_keep_their_dataset_and_geolife_is_what_the_report_reads(tmp_path):
    path = tmp_path / "metrics.csv"
    record_metrics(row("a", 1), path)
    record_metrics(row("fsq_a", 1, dataset="fsq_nyc"), path)
    assert list(pd.read_csv(path).columns) == METRICS_COLUMNS
    assert list(read_metrics(path)["experiment"]) == ["a"]
    assert list(read_metrics(path, dataset="fsq_nyc")["experiment"]) == ["fsq_a"]
    assert set(read_metrics(path, dataset=None)["dataset"]) == {"geolife", "fsq_nyc"}
    record_metrics(row("a", 2), path)  # a Geolife recording keeps the other dataset's rows
    assert len(read_metrics(path, dataset=None)) == 3


def test_a_table_without_the_column_holds_geolife_runs(tmp_path):
    path = tmp_path / "metrics.csv"
    pd.DataFrame([row("old", 1)]).to_csv(path, index=False)
    assert list(read_metrics(path)["dataset"]) == ["geolife"]


def test_the_committed_table_has_a_dataset_on_every_row():
    table = pd.read_csv(nextloc.core.paths.METRICS_FILE)
    assert table["dataset"].notna().all()
    registry = load_registry()["experiments"]
    for name, dataset in zip(table["experiment"], table["dataset"]):
        assert dataset == registry.get(name, {}).get("dataset", "geolife"), name


# --- the registry's dataset key ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["../fsq_nyc", 3, "a/b"])
def test_a_dataset_must_be_a_folder_name(project, value):
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "x": {"model": "persistent", "seeds": [1], "dataset": value}}}))
    with pytest.raises(ConfigError, match="dataset must name a data folder"):
        load_registry()


def test_the_stamp_names_the_dataset_and_geolife_stamps_keep_their_shape(tmp_path, monkeypatch):
    from nextloc.experiments.run_inputs import run_inputs

    staypoints, _ = make_staypoints()
    split_folder(tmp_path, staypoints, name="city")
    monkeypatch.setenv("NEXTLOC_DATA", str(tmp_path / "geolife"))
    city = run_inputs({"model": "markov", "dataset": "city"})
    assert city["dataset"] == "city" and city["data"] not in ("missing", "")
    assert set(run_inputs({"model": "markov"})) == {"data", "notebook"}


def test_run_refuses_an_absent_dataset_before_any_kernel(project, monkeypatch, capsys):
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "x": {"model": "persistent", "seeds": [1], "dataset": "nowhere"}}}))
    monkeypatch.setenv("NEXTLOC_DATA", str(project / "data" / "geolife"))
    assert main(["run", "x", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'nowhere' not found" in err and "Traceback" not in err


@pytest.mark.slow
@needs_fsq
def test_a_quick_run_on_foursquare(project, monkeypatch):
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "f": {"model": "pointer", "seeds": [1], "dataset": "fsq_nyc", "batch_size": 256,
              "model.dim": 32}}}))
    monkeypatch.setenv("NEXTLOC_DATA", str(SHARED / "geolife"))
    from nextloc.experiments.run import train_and_record_seed

    result = train_and_record_seed("f", 1, quick=True, device="cpu", num_threads=1)
    saved = json.loads((nextloc.core.paths.run_dir("f", 1, True) / "metrics.json").read_text())
    assert 0 < saved["test"]["n"] <= 13454 and 0 <= result.test["acc1"] <= 1  # quick: a part
    assert not nextloc.core.paths.METRICS_FILE.is_file()  # quick runs record nothing


def test_a_counting_rule_refit_has_a_page_without_curves():
    from nextloc.experiments.runpage import describe, plot_history, run_kind

    history = pd.DataFrame(columns=["epoch"])
    config = {"model": "markov", "refit": True, "model_options": {}, "seed": 42}
    saved = {"n_params": 0, "train_seconds": 0.0, "device": "cpu"}
    assert run_kind(saved, config, history) == "refit rule"
    assert plot_history(saved, config, history) is None
    assert "protocol B" in describe(saved, config, history)


def test_an_unreadable_split_file_is_one_clear_error(tmp_path):
    staypoints, _ = make_staypoints()
    folder = split_folder(tmp_path, staypoints)
    (folder / "city_valid.csv").write_bytes(b"\x00\xff\xfe garbage")
    with pytest.raises(DataError, match="city_valid.csv"):
        load_dataset(folder, use_cache=False)


def test_the_compute_line_adds_this_dataset_s_searches_only(tmp_path, monkeypatch):
    from nextloc.report.second_city import compute_line

    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", tmp_path)
    (tmp_path / "search").mkdir()
    # One trial of 3,600 s on one seed, one of 1,800 s per seed on two seeds: 2 core-hours.
    pd.DataFrame({"trial": ["{}", '{"lr": 0.002}'], "seeds": [1, 2], "val_acc1": [0.3, 0.3],
                  "train_seconds": [3600.0, 1800.0]}).to_csv(tmp_path / "search" / "city.csv",
                                                             index=False)
    runs = pd.DataFrame({"train_seconds": [1800.0, 1800.0]})
    searches = {"city": {"dataset": "fsq_nyc"}, "geolife_step": {}}
    line = compute_line(runs, searches)
    assert line.startswith("2 recorded runs, 1.00 core-hours")
    assert "(`city`) trained 2.00 core-hours more" in line and "geolife_step" not in line
    assert "search" not in compute_line(runs, {"geolife_step": {}})
