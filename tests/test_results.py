"""results/ under damage (issue 9, defects 3 and 5): a truncated or garbled metrics line stops
reading and recording with its file and line named, and archiving moves all or nothing, inside
results/superseded only. Every test works on a temporary project."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from project_tools import GOOD_ROW, populate, snapshot

import nextloc.results
from nextloc.errors import ConfigError, ResultsError
from nextloc.results import archive_runs, read_metrics, record_metrics


@pytest.fixture
def results(project):
    """The project with a finished run of 'x' and one of 'y'."""
    populate(project)
    record_metrics({**GOOD_ROW, "experiment": "y", "seed": 7})
    return project / "results"


def truncate_line(path, line: int, keep: int = 25) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1][:keep]
    path.write_text("\n".join(lines) + "\n")


# --- defect 5: a truncated metrics.csv line --------------------------------------------------

def test_a_truncated_line_stops_reading_with_file_and_line(results):
    truncate_line(results / "metrics.csv", 3)
    with pytest.raises(ResultsError, match=r"metrics.csv line 3: \d+ fields, the header has 14"):
        read_metrics()


def test_recording_into_a_truncated_table_changes_nothing(results):
    # Before issue 9 the half row was read as NaNs and written back for good by the next record.
    truncate_line(results / "metrics.csv", 3)
    before = (results / "metrics.csv").read_bytes()
    with pytest.raises(ResultsError, match="line 3"):
        record_metrics({**GOOD_ROW, "seed": 2})
    assert (results / "metrics.csv").read_bytes() == before


def test_tables_of_a_truncated_table_write_no_nan_into_the_book(results, project):
    from nextloc.report import write_tables
    from nextloc.tables import GENERATED

    assert GENERATED.is_relative_to(project)  # the test's own book
    truncate_line(results / "metrics.csv", 2, keep=40)
    with pytest.raises(ResultsError, match="line 2"):
        write_tables()
    assert not GENERATED.exists()


def test_a_huge_bad_line_is_not_echoed(results):
    with open(results / "metrics.csv", "a") as table:
        table.write("x" * 5_000_000 + "\n")
    with pytest.raises(ResultsError) as error:
        read_metrics()
    assert "line 4" in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize("column, value", [("test_acc1", float("nan")), ("seed", None),
                                           ("device", ""), ("val_acc1", 1.5)])
def test_a_row_with_a_missing_or_impossible_value_is_not_recorded(results, column, value):
    before = snapshot(results)
    with pytest.raises(ResultsError, match=f"refusing to record x seed .*{column}"):
        record_metrics({**GOOD_ROW, column: value})
    assert snapshot(results) == before


def test_a_refit_row_without_validation_accuracy_is_recorded(results):
    record_metrics({**GOOD_ROW, "seed": 3, "val_acc1": float("nan")})
    assert read_metrics().set_index("seed").loc[3, "val_acc1"] != 0.25


# --- defect 3: archive labels and all-or-nothing archiving -----------------------------------

@pytest.mark.parametrize("label", ["../../x", "../x", "/tmp/x", "a/b", "..", ".hidden", "",
                                   "x" * 10 + "/..", "a\\b"])
def test_an_archive_label_must_be_a_plain_name(results, project, label):
    before, outside = snapshot(results), sorted(project.parent.iterdir())
    with pytest.raises(ConfigError, match="plain name"):
        archive_runs("x", label)
    assert snapshot(results) == before
    assert sorted(project.parent.iterdir()) == outside


def test_archive_moves_rows_runs_and_notebooks(results, project):
    target = archive_runs("x", "x_v1")
    assert target == results / "superseded" / "x_v1"
    assert list(read_metrics()["experiment"]) == ["y"]
    assert list(pd.read_csv(target / "metrics.csv")["seed"]) == [1]
    assert (target / "runs" / "seed_1" / "metrics.json").is_file()
    assert (target / "notebooks" / "seed_1.ipynb").is_file()
    assert not (results / "runs" / "x").exists() and not (project / "book" / "runs" / "x").exists()
    assert sorted(p.name for p in (results / "superseded").iterdir()) == ["old", "x_v1"]


def failing_after(calls: int, function, error=OSError(28, "No space left on device")):
    """``function``, but the call after the first ``calls`` ones raises ``error``."""
    count = iter(range(1_000_000))

    def wrapper(*args, **kwargs):
        if next(count) == calls:
            raise error
        return function(*args, **kwargs)
    return wrapper


@pytest.mark.parametrize("where", ["moving the notebooks", "rewriting metrics.csv",
                                   "Ctrl-C while rewriting metrics.csv"])
def test_a_failed_archive_puts_everything_back(results, project, monkeypatch, where):
    # Before issue 9 a failure half-way left the runs split between results/runs and the archive.
    before, book = snapshot(results), snapshot(project / "book")
    if where == "moving the notebooks":
        monkeypatch.setattr(nextloc.results.shutil, "move", failing_after(1, shutil.move))
    else:
        error = KeyboardInterrupt() if where.startswith("Ctrl-C") else OSError(28, "disk full")
        monkeypatch.setattr(nextloc.results, "update_metrics",
                            failing_after(0, None, error))
    with pytest.raises((ResultsError, KeyboardInterrupt)) as failure:
        archive_runs("x", "x_v1")
    if failure.type is ResultsError:
        assert "nothing was archived" in str(failure.value)
    assert snapshot(results) == before and snapshot(project / "book") == book


def test_archive_refuses_a_garbled_table_before_moving_anything(results):
    truncate_line(results / "metrics.csv", 2)
    before = snapshot(results)
    with pytest.raises(ResultsError, match="line 2"):
        archive_runs("x", "x_v1")
    assert snapshot(results) == before

