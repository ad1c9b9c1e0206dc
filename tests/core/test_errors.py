"""Bad input must end in one DataError/ConfigError that names the file or the problem, not in a
pandas/numpy/torch traceback from deep inside the pipeline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nextloc.data.split import STAYPOINTS_FILE, VALID_IDS_FILE, build_dataset, load_dataset
from nextloc.core.errors import ConfigError, DataError, NextlocError, TrainingError
from nextloc.models import PARAMETER_BUDGET, build_model, count_parameters
from nextloc.training.loop import train
from nextloc.training.settings import TrainConfig


def test_errors_share_one_base_class():
    # Callers catch NextlocError to tell bad input from bugs.
    assert issubclass(DataError, NextlocError) and issubclass(ConfigError, NextlocError)


# --- data files ------------------------------------------------------------------------------

def test_missing_data_folder_points_to_nextloc_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXTLOC_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="NEXTLOC_DATA") as error:
        load_dataset()
    assert "nowhere" in str(error.value)


def test_missing_staypoints_file(write_csvs, tiny_frames):
    folder = write_csvs(None, tiny_frames[1])
    with pytest.raises(DataError, match=f"{STAYPOINTS_FILE}: file not found"):
        load_dataset(folder)


def test_missing_valid_ids_file(write_csvs, tiny_frames):
    folder = write_csvs(tiny_frames[0], None)
    with pytest.raises(DataError, match=f"{VALID_IDS_FILE}: file not found"):
        load_dataset(folder)


def test_empty_file(write_csvs, tiny_frames):
    folder = write_csvs(*tiny_frames)
    (folder / STAYPOINTS_FILE).write_text("")
    with pytest.raises(DataError, match=f"{STAYPOINTS_FILE}: cannot be read as CSV"):
        load_dataset(folder)


def test_missing_column(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = write_csvs(staypoints.drop(columns="weekday"), valid_ids)
    with pytest.raises(DataError, match=rf"{STAYPOINTS_FILE}: missing column\(s\) \['weekday'\]"):
        load_dataset(folder)


def test_misnamed_column_shows_what_was_found(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = write_csvs(staypoints.rename(columns={"user_id": "userid"}), valid_ids)
    with pytest.raises(DataError, match=r"missing column\(s\) \['user_id'\]; found .*'userid'"):
        load_dataset(folder)


def test_misnamed_column_in_valid_ids(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = write_csvs(staypoints, pd.DataFrame({"ids": valid_ids}))
    with pytest.raises(DataError, match=rf"{VALID_IDS_FILE}: missing column\(s\) \['id'\]"):
        load_dataset(folder)


def test_non_numeric_value(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    staypoints["start_min"] = staypoints["start_min"].astype(object)
    staypoints.loc[3, "start_min"] = "noon"
    folder = write_csvs(staypoints, valid_ids)
    with pytest.raises(DataError, match=r"column 'start_min' must be numeric; .*'noon'"):
        load_dataset(folder)


def test_nan_value(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    staypoints.loc[3, "duration"] = np.nan
    folder = write_csvs(staypoints, valid_ids)
    nan_message = r"column 'duration' has NaN/empty values \(data rows \[3\]"
    with pytest.raises(DataError, match=nan_message):
        load_dataset(folder)


def test_window_too_long_for_any_sample(write_csvs, tiny_frames):
    folder = write_csvs(*tiny_frames)
    with pytest.raises(DataError, match="the train split has no samples with previous_day=1000"):
        load_dataset(folder, previous_day=1000)


def test_validation_period_without_samples(tiny_frames):
    staypoints, valid_ids = tiny_frames
    # 30 days: the validation period is days 18..23, shorter than the 7-day window it needs.
    short = staypoints[staypoints["start_day"] < 30]
    with pytest.raises(DataError, match="the validation split has no samples"):
        build_dataset(short, valid_ids, previous_day=7)


def test_previous_day_below_one(tiny_frames):
    with pytest.raises(DataError, match="previous_day must be at least 1"):
        build_dataset(*tiny_frames, previous_day=0)


# --- models and training config --------------------------------------------------------------

def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ConfigError,
                       match=r"unknown model 'nope'; registered models: \[.*'baseline'"):
        build_model("nope", num_locations=10, num_users=3)


def test_model_over_the_budget_is_refused_unless_allowed():
    with pytest.raises(ConfigError, match="over the budget of 500,000"):
        build_model("baseline", num_locations=20000, num_users=45)
    model = build_model("baseline", num_locations=20000, num_users=45, over_budget_ok=True)
    assert count_parameters(model) >= PARAMETER_BUDGET


def test_unknown_model_option():
    with pytest.raises(ConfigError, match=r"model 'baseline' has no option\(s\) \['width'\]"):
        build_model("baseline", num_locations=10, num_users=3, width=5)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"epochs": -1}, {"lr": 0.0}, {"patience": 0}])
def test_invalid_train_config(bad):
    with pytest.raises(ConfigError, match="invalid training setting"):
        TrainConfig(**bad)


def test_train_with_unknown_model(tiny_data):
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        train(TrainConfig(model="nope", device="cpu"), tiny_data, progress=False)


# --- diverging training (issue 9, defect 1) --------------------------------------------------

@pytest.mark.slow
def test_a_diverging_run_stops_with_a_training_error_not_a_perfect_score(tiny_data):
    # Before issue 9, lr=inf trained to NaN weights, and NaN scores counted as rank 1: validation
    # Acc@1 1.0, kept by early stopping. lr=inf is now refused up front; a finite lr that still
    # diverges stops at the first non-finite loss or weights.
    with pytest.raises(ConfigError, match="'lr'.*finite"):
        TrainConfig(model="baseline", lr=float("inf"))
    config = TrainConfig(model="baseline", lr=1e30, epochs=3, max_batches=4, device="cpu",
                         model_options={"dim": 16, "layers": 1, "feedforward": 16})
    with pytest.raises(TrainingError, match="diverged. Lower lr"):
        train(config, tiny_data, progress=False)
