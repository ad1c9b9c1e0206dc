"""``nextloc preprocess``: raw GPS -> a dataset folder. Checked against facts computed here,
independently of the pipeline: on synthetic tracks whose stays are known by construction, and
on the shipped raw Geolife sample (11 users, about two weeks) with relaxed thresholds."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from nextloc.cli import main
from nextloc.data.split import default_data_dir, load_dataset
from nextloc.core.errors import ConfigError, DataError
from nextloc.preprocess.pipeline import PreprocessConfig, load_config, preprocess
from synthetic_tracks import DAYS, HOMES, WORK, write_user

RAW_SAMPLE = default_data_dir().parent / "geolife_raw_sample" / "Data"
RELAXED = ["--min-days", "3", "--quality-window", "0", "--min-samples", "1",
           "--previous-day", "1", "--min-history", "2"]
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    for user in HOMES:
        write_user(raw, user)
    out = tmp_path_factory.mktemp("synthetic") / "data"
    config = PreprocessConfig(min_days=DAYS - 2, quality_window=0, previous_day=1)
    return raw, out, preprocess(raw, out, config, progress=False)


def test_synthetic_stays_are_found_as_constructed(synthetic):
    _, out, result = synthetic
    staypoints = pd.read_csv(out / "staypoints.csv")
    # Per user: the first morning at home, then every day work and an evening-to-morning home.
    assert result.counts["final_staypoints"] == len(staypoints) == 2 * (2 * DAYS + 1)
    per_user = staypoints.groupby("user_id")["location_id"].agg(["size", "nunique"])
    assert per_user["size"].tolist() == [2 * DAYS + 1, 2 * DAYS + 1]
    assert per_user["nunique"].tolist() == [2, 2]
    locations = pd.read_csv(out / "locations.csv")
    assert len(locations) == 3  # two homes and the shared workplace
    work = locations.loc[(locations["lat"] - WORK[0]).abs().idxmin()]
    assert abs(work["lon"] - WORK[1]) < 1e-4 and work["staypoints"] == 2 * DAYS
    users = pd.read_csv(out / "users.csv")
    assert users["tracked_days"].tolist() == [DAYS - 1, DAYS - 1]
    assert (users["quality"] > 0.95).all()


def test_synthetic_times_match_the_schedule(synthetic):
    _, out, _ = synthetic
    staypoints = pd.read_csv(out / "staypoints.csv")
    at_work = staypoints[staypoints["start_min"] > 0]
    # Work starts when the fixes stop moving (08:30) and lasts about 8.5 hours.
    assert at_work["start_min"].between(8 * 60 + 25, 8 * 60 + 31).mean() > 0.45
    assert (staypoints["duration"] >= 25).all()
    assert (staypoints["weekday"] == (staypoints["start_day"] + 0) % 7).all()  # 2008-10-06: Mon


def test_the_default_quality_filter_drops_short_tracking(tmp_path, synthetic):
    raw, _, _ = synthetic
    with pytest.raises(DataError, match=r"no user passes the tracking-quality filter \(min_days"
                                        r"=50, quality_window=10 weeks; the longest-tracked user "
                                        rf"has {DAYS - 1} days\)"):
        preprocess(raw, tmp_path / "out", PreprocessConfig(), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_folder_without_tracks_is_one_clear_error(tmp_path, capsys):
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no Geolife tracks found" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--min-samples", "0"], r"\['min_samples'\] out of range"),
    (["--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    (["--quality-window", "-1"], r"\['quality_window'\] out of range"),
])
def test_bad_options_are_one_clear_error(tmp_path, capsys, argv, message):
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "o"), *argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match=message):
        load_config(None, **{argv[0][2:].replace("-", "_"): _number(argv[1])})


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def test_yaml_options_and_flags_override_in_order(tmp_path):
    path = tmp_path / "options.yaml"
    path.write_text("min_days: 5\nepsilon: 35\n")
    config = load_config(path, epsilon=40, merge_gap=None)
    assert (config.min_days, config.epsilon, config.merge_gap) == (5, 40, 1.0)
    path.write_text("min_dayz: 5\n")
    with pytest.raises(ConfigError, match=r"unknown preprocess option\(s\) \['min_dayz'\]"):
        load_config(path)
    path.write_text("epsilon: '20'\n")
    with pytest.raises(ConfigError, match="epsilon must be a finite number"):
        load_config(path)


# --- the shipped raw Geolife sample --------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    if not RAW_SAMPLE.is_dir():
        pytest.skip(f"raw Geolife sample not found at {RAW_SAMPLE}")
    out = tmp_path_factory.mktemp("sample") / "data"
    assert main(["preprocess", str(RAW_SAMPLE), "--out", str(out), "--quiet", "--workers", "2",
                 *RELAXED]) == 0
    return out


def test_sample_output_is_the_same_for_one_and_two_workers(sample, tmp_path):
    from test_preprocess_shards import same_dataset

    out = tmp_path / "one_worker"
    assert main(["preprocess", str(RAW_SAMPLE), "--out", str(out), "--quiet", "--workers", "1",
                 *RELAXED]) == 0
    same_dataset(sample, out)


def raw_fixes_per_user() -> dict[int, int]:
    return {int(user.name): sum(len(p.read_text().splitlines()) - 6
                                for p in (user / "Trajectory").glob("*.plt"))
            for user in RAW_SAMPLE.iterdir() if user.is_dir()}


@pytest.mark.slow
def test_sample_counts_match_the_raw_files(sample):
    report = json.loads((sample / "preprocess.json").read_text())
    per_user = raw_fixes_per_user()
    assert report["counts"]["gps_points"] == sum(per_user.values()) > 100_000
    assert report["counts"]["source_users"] == len(per_user) == 11
    users = pd.read_csv(sample / "users.csv")
    assert sorted(users["source_user"]) == sorted(per_user)
    staypoints = pd.read_csv(sample / "staypoints.csv")
    assert report["counts"]["final_staypoints"] == len(staypoints) > 50
    assert report["counts"]["users"] == staypoints["user_id"].nunique() >= 2
    assert sorted(staypoints["user_id"].unique()) == list(range(1, staypoints["user_id"].max() + 1))
    assert report["options"]["min_samples"] == 1 and report["options"]["previous_day"] == 1


def test_sample_staypoints_lie_inside_their_locations(sample):
    staypoints = pd.read_csv(sample / "staypoints.csv")
    locations = pd.read_csv(sample / "locations.csv").set_index("id")
    assert set(staypoints["location_id"]) == set(locations.index)  # no unused location either
    extent = shapely.from_wkt(locations.loc[staypoints["location_id"], "extent"].to_numpy())
    points = shapely.points(staypoints["lon"], staypoints["lat"])
    assert shapely.covers(extent, points).all()
    # A location's extent is its staypoints' hull grown by epsilon (20 m): never kilometres.
    assert (shapely.bounds(extent)[:, 2] - shapely.bounds(extent)[:, 0]).max() < 0.05


def test_sample_staypoints_are_activities_with_consistent_times(sample):
    table = pd.read_csv(sample / "staypoints.csv")
    assert table["id"].is_unique and (table["duration"] >= 25).all()
    assert table.equals(table.sort_values(["user_id", "start_day", "start_min"]))
    start = table["start_day"] * 1440 + table["start_min"]
    end = table["end_day"] * 1440 + table["end_min"].where(table["end_min"] < 1440, 0)
    assert ((end - start) - table["duration"]).abs().max() <= 1
    assert (table.groupby("user_id")["start_day"].min() == 0).all()
    assert (table.groupby("user_id").apply(
        lambda u: ((u["weekday"] - u["start_day"]) % 7).nunique(), include_groups=False) == 1).all()
    # Consecutive stays of a user at one location were merged when at most 1 minute apart.
    following = table.shift(-1)
    same = ((following["user_id"] == table["user_id"])
            & (following["location_id"] == table["location_id"]))
    gap = following["start_day"] * 1440 + following["start_min"] - end
    assert not (same & (gap <= 1)).any()


def published_valid_ids(table: pd.DataFrame, previous_day: int, min_history: int) -> set[int]:
    """The valid-id rule as Hong et al. (2023) wrote it, one row at a time."""
    valid = set()
    for _, rows in table.groupby("user_id"):
        last = rows["start_day"].max()
        split = np.select([rows["start_day"] < 0.6 * last, rows["start_day"] < 0.8 * last],
                          [0, 1], 2)
        for code in range(3):
            part = rows[split == code].reset_index(drop=True)
            for index, row in part.iterrows():
                if row["start_day"] - part["start_day"].min() < previous_day:
                    continue
                history = part.iloc[:index]
                if (history["start_day"] >= row["start_day"] - previous_day).sum() >= min_history:
                    valid.add(int(row["id"]))
    return valid


def test_sample_valid_ids_follow_the_published_rule(sample):
    table = pd.read_csv(sample / "staypoints.csv")
    valid = set(pd.read_csv(sample / "valid_ids.csv")["id"])
    assert valid == published_valid_ids(table, previous_day=1, min_history=2)


def test_sample_output_loads_with_every_split_populated(sample, capsys):
    data = load_dataset(sample, previous_day=1)
    assert all(len(data.splits[name]) > 0 for name in ("train", "validation", "test"))
    # The folder remembers the window its valid ids were made for (preprocess.json), so the
    # summary needs no --previous-day; the standard 7 days would leave the splits empty.
    assert main(["data", "summary", "--data", str(sample), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == data.summary()
    assert main(["data", "summary", "--data", str(sample), "--previous-day", "7"]) == 2
    assert "split has no samples with previous_day=7" in capsys.readouterr().err
    report = json.loads((sample / "preprocess.json").read_text())
    (sample / "preprocess.json").write_text(json.dumps({**report, "options": {
        **report["options"], "previous_day": 0}}))
    try:
        assert main(["data", "summary", "--data", str(sample)]) == 2
        assert "options.previous_day must be a whole number >= 1" in capsys.readouterr().err
    finally:
        (sample / "preprocess.json").write_text(json.dumps(report))


# --- the table steps, on hand-made tables -------------------------------------------------------

from nextloc.preprocess.steps import covered_seconds, time_table, user_quality  # noqa: E402


def test_covered_seconds_equals_a_brute_force_sum():
    rng = np.random.default_rng(3)
    start = rng.uniform(0, 1000, 40)
    finish = start + rng.uniform(0, 100, 40)
    at = np.linspace(-10, 1200, 57)
    expected = [np.clip(t - start, 0, finish - start).sum() for t in at]
    assert covered_seconds(start, finish, at) == pytest.approx(expected)


def records(user: int, spans: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": user,
                         "started_at": pd.to_datetime([s for s, _ in spans], utc=True),
                         "finished_at": pd.to_datetime([f for _, f in spans], utc=True)})


def test_user_quality_over_the_whole_period_and_in_weekly_windows():
    # User 1: tracked half of every day for 21 days. User 2: 3 days only.
    days = pd.date_range("2009-03-02", periods=21, freq="D")
    half_days = [(str(d + pd.Timedelta(hours=6)), str(d + pd.Timedelta(hours=18))) for d in days]
    table = pd.concat([records(1, half_days),
                       records(2, [("2009-03-02 00:00", "2009-03-05 00:00")])])

    whole = user_quality(table, min_days=5, window_weeks=0).set_index("source_user")
    assert whole.loc[1, "tracked_days"] == 20 and whole.loc[2, "tracked_days"] == 3
    # 21 half days over the 20.5 days from the first start to the last finish.
    assert whole.loc[1, "quality"] == pytest.approx(21 * 12 / (20 * 24 + 12))
    assert whole["kept"].tolist() == [True, False]

    windows = user_quality(table, min_days=5, window_weeks=2).set_index("source_user")
    # Windows of 2 weeks from the Monday midnight: weeks 0-1 and 1-2, each exactly half covered.
    assert windows.loc[1, "quality"] == pytest.approx(0.5)
    assert np.isnan(windows.loc[2, "quality"]) and windows["kept"].tolist() == [True, False]
    assert not user_quality(table, min_days=5, window_weeks=3).loc[0, "kept"]  # no full window


def test_time_table_in_utc_and_in_local_time():
    stays = pd.DataFrame({"user_id": [7, 7], "location_id": [3, 4],
                          "started_at": pd.to_datetime(["2008-10-26 15:10", "2008-10-27 20:00"],
                                                       utc=True),
                          "finished_at": pd.to_datetime(["2008-10-27 00:00", "2008-10-27 23:59"],
                                                        utc=True)})
    columns = ["start_day", "end_day", "start_min", "end_min", "weekday", "duration"]
    # Sunday 15:10 to midnight (end_min 1440, as published), then Monday 20:00 to 23:59.
    assert time_table(stays, "UTC")[columns].values.tolist() == [[0, 1, 910, 1440, 6, 530],
                                                                 [1, 1, 1200, 1439, 0, 239]]
    # UTC+8: Sunday 23:10, then Tuesday 04:00, two local days after the first local midnight.
    local = time_table(stays, "Asia/Shanghai")
    assert local[["start_day", "start_min", "weekday"]].values.tolist() == [[0, 1390, 6],
                                                                         [2, 240, 1]]
