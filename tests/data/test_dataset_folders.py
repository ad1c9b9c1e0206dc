"""Dataset folders: the generic layout, check-ins without durations, locations, and the value
checks that every dataset gets (issue 9, defect 4: out-of-range values used to be accepted, or
crashed later inside torch)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nextloc.cli import main
from nextloc.data.split import build_dataset, default_data_dir, load_dataset
from nextloc.data.datasets import GENERIC_FILES, MESSAGE_CHARS, dataset_files
from nextloc.data.locations import load_locations
from nextloc.core.errors import DataError
from test_split_and_samples import assert_data_equal


def generic_folder(tmp_path, staypoints, valid_ids=None, name="mine"):
    folder = tmp_path / name
    folder.mkdir()
    staypoints.to_csv(folder / "staypoints.csv", index=False)
    if valid_ids is not None:
        pd.DataFrame({"id": valid_ids}).to_csv(folder / "valid_ids.csv", index=False)
    return folder


# --- value checks (defect 4) -----------------------------------------------------------------

BAD_VALUES = [
    ("start_day", -1, r"'start_day' must be >= 0"),
    ("weekday", 7, r"'weekday' must be in 0\.\.6"),
    ("weekday", -1, r"'weekday' must be in 0\.\.6"),
    ("start_min", 1440, r"'start_min' must be in 0\.\.1439"),
    ("start_min", -5, r"'start_min' must be in 0\.\.1439"),
    ("duration", -3.0, r"'duration' must be >= 0"),
    ("user_id", 0, r"'user_id' must be >= 1"),
    ("location_id", 3.5, r"'location_id' must hold whole numbers"),
    ("start_day", 2.5, r"'start_day' must hold whole numbers"),
    ("id", 1e30, r"'id' must hold whole numbers"),
]


@pytest.mark.parametrize("column, value, message", BAD_VALUES)
def test_out_of_range_values_are_refused_naming_the_rows(write_csvs, tiny_frames, column, value,
                                                         message):
    staypoints, valid_ids = tiny_frames
    staypoints[column] = staypoints[column].astype(np.float64)
    staypoints.loc[[4, 9], column] = value
    with pytest.raises(DataError, match=message) as error:
        load_dataset(write_csvs(staypoints, valid_ids))
    assert "data rows [4, 9]" in str(error.value)


def test_duplicate_ids_are_refused(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    staypoints.loc[7, "id"] = staypoints.loc[2, "id"]
    with pytest.raises(DataError, match=r"'id' must be unique; data rows \[2, 7\]"):
        load_dataset(write_csvs(staypoints, valid_ids))


def test_fractional_valid_ids_are_refused(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = write_csvs(staypoints, pd.DataFrame({"id": [1.0, 2.5, 3.0]}))
    with pytest.raises(DataError, match=r"valid_ids_geolife.csv: column 'id' must hold whole"):
        load_dataset(folder)


def test_header_only_file_says_no_rows(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = write_csvs(staypoints.iloc[:0], valid_ids)
    with pytest.raises(DataError, match="dataSet_geolife.csv: has a header but no rows"):
        load_dataset(folder)


@pytest.mark.slow
def test_a_50_mb_bad_value_gives_a_short_message(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    staypoints["start_min"] = staypoints["start_min"].astype(object)
    staypoints.loc[3, "start_min"] = "x" * 50_000_000
    with pytest.raises(DataError, match=r"'start_min' must be numeric; data rows \[3\]") as error:
        load_dataset(write_csvs(staypoints, valid_ids))
    assert len(str(error.value)) <= MESSAGE_CHARS


@pytest.mark.slow
def test_a_50_mb_column_name_gives_a_short_message(write_csvs, tiny_frames):
    staypoints, valid_ids = tiny_frames
    staypoints = staypoints.rename(columns={"weekday": "w" * 50_000_000})
    with pytest.raises(DataError, match=r"missing column\(s\) \['weekday'\]") as error:
        load_dataset(write_csvs(staypoints, valid_ids))
    assert len(str(error.value)) <= MESSAGE_CHARS


def test_cli_reports_a_bad_value_in_one_line(write_csvs, tiny_frames, capsys):
    staypoints, valid_ids = tiny_frames
    staypoints.loc[5, "weekday"] = 9
    assert main(["data", "summary", "--data", str(write_csvs(staypoints, valid_ids))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "'weekday' must be in 0..6 (0 = Monday); data rows [5] have [9]" in err
    assert "Traceback" not in err


# --- the generic layout ----------------------------------------------------------------------

def test_generic_folder_without_valid_ids_makes_every_staypoint_valid(tmp_path, tiny_frames):
    staypoints, _ = tiny_frames
    folder = generic_folder(tmp_path, staypoints.assign(comment="ignored"))
    files = dataset_files(folder)
    assert files.valid_ids is None and files.locations is None
    assert_data_equal(load_dataset(folder),
                      build_dataset(staypoints, staypoints["id"].to_numpy(), previous_day=7))


def test_generic_folder_with_valid_ids_uses_them(tmp_path, tiny_frames):
    staypoints, valid_ids = tiny_frames
    folder = generic_folder(tmp_path, staypoints, valid_ids)
    assert_data_equal(load_dataset(folder), build_dataset(staypoints, valid_ids, previous_day=7))


def test_checkins_without_durations_get_duration_zero_and_a_note(tmp_path, tiny_frames, capsys):
    staypoints, valid_ids = tiny_frames
    folder = generic_folder(tmp_path, staypoints.drop(columns=["duration", "end_day", "end_min"]))
    data = load_dataset(folder)
    expected = build_dataset(staypoints.assign(duration=0), staypoints["id"].to_numpy())
    assert_data_equal(data, expected)
    assert all((split.duration == 0).all() for split in data.splits.values())

    assert main(["data", "summary", "--data", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"] == len(expected.splits["train"]) > 0
    assert "no 'duration' column: every duration is 0" in summary["notes"][0]


def test_a_folder_with_both_layouts_is_ambiguous(write_csvs, tiny_frames):
    folder = write_csvs(*tiny_frames)
    tiny_frames[0].to_csv(folder / GENERIC_FILES["staypoints"], index=False)
    with pytest.raises(DataError, match="both staypoints.csv and Geolife files"):
        load_dataset(folder)


def test_a_folder_without_staypoints_says_what_it_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match=r"no staypoints.csv \(nor the Geolife dataSet_geolife"):
        load_dataset(tmp_path)


# --- locations -------------------------------------------------------------------------------

def test_locations_from_lon_lat_columns(tmp_path, tiny_frames):
    folder = generic_folder(tmp_path, tiny_frames[0])
    pd.DataFrame({"id": [3, 1], "lon": [8.5, 116.3], "lat": [47.4, 39.9], "name": ["a", "b"]}
                 ).to_csv(folder / "locations.csv", index=False)
    locations = load_locations(folder)
    assert list(locations.columns) == ["id", "lon", "lat"]
    assert locations.sort_values("id").values.tolist() == [[1, 116.3, 39.9], [3, 8.5, 47.4]]


def test_locations_from_wkt_centres(tmp_path, tiny_frames):
    folder = generic_folder(tmp_path, tiny_frames[0])
    pd.DataFrame({"id": [0, 1], "center": ["POINT (116.25 39.5)", "POINT (-0.125 51.5)"]}
                 ).to_csv(folder / "locations.csv", index=False)
    assert load_locations(folder).sort_values("id").values.tolist() == [[0, 116.25, 39.5],
                                                                      [1, -0.125, 51.5]]


@pytest.mark.parametrize("rows, message", [
    ({"id": [0, 1], "lon": [8.5, 8.6], "lat": [47.4, 91.0]}, r"data rows \[1\] need"),
    ({"id": [0, 0], "lon": [8.5, 8.6], "lat": [47.4, 47.5]}, r"data rows \[0, 1\] need"),
    ({"id": [0, 1.5], "lon": [8.5, 8.6], "lat": [47.4, 47.5]}, r"data rows \[1\] need"),
    ({"id": [0, 1], "lon": [8.5, "east"], "lat": [47.4, 47.5]}, r"data rows \[1\] need"),
    ({"id": [0, 1], "center": ["POINT (1 2)", "nowhere"]}, r"data rows \[1\] need"),
    ({"id": [0, 1], "x": [1, 2]}, r"needs an 'id' column and 'lon' and 'lat' columns"),
])
def test_bad_locations_are_refused(tmp_path, tiny_frames, rows, message):
    folder = generic_folder(tmp_path, tiny_frames[0])
    pd.DataFrame(rows).to_csv(folder / "locations.csv", index=False)
    with pytest.raises(DataError, match=message):
        load_locations(folder)


def test_no_locations_file_means_no_coordinates(tmp_path, tiny_frames):
    folder = generic_folder(tmp_path, tiny_frames[0])
    assert load_locations(folder) is None
    assert load_dataset(folder).coordinates is None


def test_generic_locations_file_gives_every_class_its_coordinates(tmp_path, tiny_frames):
    from conftest import make_locations

    folder = generic_folder(tmp_path, tiny_frames[0])
    make_locations()[["id", "lon", "lat"]].to_csv(folder / "locations.csv", index=False)
    data = load_dataset(folder)
    assert data.coordinates.shape == (data.num_locations, 2)
    assert np.isfinite(data.coordinates[2:]).all()


def test_shared_geolife_locations_cover_every_staypoint_location():
    if not default_data_dir().is_dir():
        pytest.skip(f"real Geolife data not found at {default_data_dir()}")
    locations = load_locations(default_data_dir())
    staypoints = pd.read_csv(default_data_dir() / "dataSet_geolife.csv")
    assert len(locations) == 2049
    assert set(staypoints["location_id"]) <= set(locations["id"])
    # Beijing holds most of them (the data notebook's map).
    in_beijing = locations["lon"].between(115.4, 117.6) & locations["lat"].between(39.4, 41.1)
    assert in_beijing.mean() > 0.7
