"""Bad inputs, round two's leftovers (issue 23): commands that write committed files refuse
non-finite numbers before writing anything, and GPS fixes whose time cannot be read. Each case
ends in one ``nextloc: error: ...`` line with exit code 2, or in a correct, counted result."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from conftest import make_staypoints
from project_tools import GOOD_ROW, full_project, rebase_paths, snapshot
from project_tools import check_clean_failure

from nextloc.cli import main


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A full project (see project_tools) with every nextloc path pointing at it."""
    root = full_project(tmp_path / "project")
    rebase_paths(root, monkeypatch.setattr)
    return root


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    return code, *capsys.readouterr()


# --- committed files: validated first, never a non-finite number ------------------------------

def test_benchmark_training_never_writes_a_non_finite_number(committed, monkeypatch, capsys):
    import nextloc.benchmarks as benchmarks

    path = committed / "results" / "benchmarks" / "training_scaling.json"
    path.parent.mkdir()
    path.write_text('{"committed": 1}\n')
    before = snapshot(committed)
    monkeypatch.setattr(benchmarks, "synthetic_staypoints", lambda *a, **k: make_staypoints()[0])
    # one epoch over an empty training split: milliseconds per sample of 0 / 0
    monkeypatch.setattr(benchmarks, "_time_models",
                        lambda data: {"pointer_ms_per_training_sample": math.nan})
    code, out, err = cli(capsys, "benchmark", "training")
    check_clean_failure(code, out, err, f"non-finite number .*{path} is unchanged")
    assert snapshot(committed) == before


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_archive_refuses_a_non_finite_metric_before_moving_anything(committed, capsys, value):
    row = pd.DataFrame([GOOD_ROW]).astype(str).assign(test_acc1=value)
    row.to_csv(committed / "results" / "metrics.csv", index=False)
    before = snapshot(committed)
    code, out, err = cli(capsys, "archive", "x", "--as", "new")
    check_clean_failure(code, out, err, "metrics.csv line 2: test_acc1 must be a fraction")
    assert snapshot(committed) == before


# --- GPS fixes whose time cannot be read --------------------------------------------------------

def write_track(raw, lines: list[str]) -> None:
    from synthetic_tracks import HEADER

    path = raw / "000" / "Trajectory" / "20081006000000.plt"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + "\n".join(lines) + "\n")


GOOD_FIXES = [f"39.9,116.3,0,150,39727.3,2008-10-06,08:{minute:02d}:00" for minute in range(7)]
DAMAGED = {"time 25:61:00": "39.9,116.3,0,150,0,2008-10-06,25:61:00",
           "30 February": "39.9,116.3,0,150,0,2008-02-30,08:00:00",
           "no time": "39.9,116.3,0,150,0,2008-10-06,",
           "words": "39.9,116.3,0,150,0,yesterday,noon",
           "a latitude of words": "north,116.3,0,150,0,2008-10-06,08:30:00"}


def test_gps_fixes_with_unreadable_times_are_dropped_and_counted(tmp_path):
    from nextloc.preprocess import tracks

    write_track(tmp_path, GOOD_FIXES[:3] + list(DAMAGED.values()) + GOOD_FIXES[3:])
    fixes = tracks.read_geolife(tmp_path, progress=False)
    assert len(fixes) == 7 and fixes.attrs["unreadable"] == len(DAMAGED)
    assert fixes["tracked_at"].notna().all()
    assert list(fixes.index) == list(range(7))


@pytest.mark.slow
def test_preprocess_counts_the_unreadable_fixes_in_preprocess_json(tmp_path, capsys):
    from synthetic_tracks import DAYS, HOMES, write_user

    raw = tmp_path / "raw"
    for user in HOMES:
        write_user(raw, user)
    track = next((raw / "001" / "Trajectory").glob("*.plt"))
    track.write_text(track.read_text() + "\n".join(DAMAGED.values()) + "\n")
    code, out, err = cli(capsys, "preprocess", str(raw), "--out", str(tmp_path / "out"),
                         "--min-days", str(DAYS - 2), "--quality-window", "0",
                         "--previous-day", "1", "--quiet")
    assert code == 0, err
    counts = json.loads((tmp_path / "out" / "preprocess.json").read_text())["counts"]
    assert counts["unreadable_points_dropped"] == len(DAMAGED)
    assert counts["gps_points"] == sum(len(path.read_text().splitlines()) - 6  # a fix a line
                                       for path in raw.glob("*/Trajectory/*.plt"))


@pytest.mark.parametrize("line", [DAMAGED["words"], "39.9,116.3,0,150,0,6,8"],
                         ids=["words", "numbers"])
def test_preprocess_of_fixes_all_without_a_time_is_one_clear_error(tmp_path, capsys, line):
    write_track(tmp_path / "raw", [line] * 5)
    code, out, err = cli(capsys, "preprocess", str(tmp_path / "raw"), "--out",
                         str(tmp_path / "out"), "--quiet")
    check_clean_failure(code, out, err, "none of the 5 GPS fixes has a readable date, time")
    assert not (tmp_path / "out").exists()


def test_tracks_that_never_move_are_one_clear_error(tmp_path, capsys, monkeypatch):
    """Every fix at (0, 0) (a GPS that never got a fix), so every fix lies in a staypoint:
    trackintel's generate_triplegs raised IndexError."""
    import synthetic_tracks

    monkeypatch.setattr(synthetic_tracks, "HOMES", {1: (0.0, 0.0), 2: (0.0, 0.0)})
    monkeypatch.setattr(synthetic_tracks, "WORK", (0.0, 0.0))
    for user in synthetic_tracks.HOMES:
        synthetic_tracks.write_user(tmp_path / "raw", user)
    code, out, err = cli(capsys, "preprocess", str(tmp_path / "raw"), "--out",
                         str(tmp_path / "out"), "--min-days", str(synthetic_tracks.DAYS - 2),
                         "--quality-window", "0", "--previous-day", "1", "--quiet")
    check_clean_failure(code, out, err, "no stay falls in the training period")
    assert not (tmp_path / "out").exists()


def test_a_cost_line_over_runs_of_one_size_goes_through_the_origin_instead_of_failing():
    import numpy as np

    from nextloc.benchmarks import _line

    assert _line(np.array([2.0, 2.0]), np.array([4.0, 6.0])) == {"per_million_points": 2.5,
                                                                 "fixed": 0.0}
    assert _line(np.array([1.0, 2.0]), np.array([3.0, 5.0])) == {"per_million_points": 2.0,
                                                                 "fixed": 1.0}
