"""results/ under damage (issue 9, defects 3 and 5): a truncated or garbled metrics line stops
reading and recording with its file and line named, and archiving moves all or nothing, inside
results/superseded only. Every test works on a temporary project."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from project_tools import GOOD_ROW, populate, snapshot

import nextloc.experiments.results
from nextloc.core.errors import ConfigError, ResultsError
from nextloc.experiments.results import archive_runs, read_metrics, record_metrics


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
    with pytest.raises(ResultsError, match=r"metrics.csv line 3: \d+ fields, the header has 17"):
        read_metrics()


def test_recording_into_a_truncated_table_changes_nothing(results):
    # Before issue 9 the half row was read as NaNs and written back for good by the next record.
    truncate_line(results / "metrics.csv", 3)
    before = (results / "metrics.csv").read_bytes()
    with pytest.raises(ResultsError, match="line 3"):
        record_metrics({**GOOD_ROW, "seed": 2})
    assert (results / "metrics.csv").read_bytes() == before


def test_tables_of_a_truncated_table_write_no_nan_into_the_book(results, project):
    from nextloc.report.build import write_report_sources
    from nextloc.core import paths

    assert paths.GENERATED.is_relative_to(project)  # the test's own book
    truncate_line(results / "metrics.csv", 2, keep=40)
    with pytest.raises(ResultsError, match="line 2"):
        write_report_sources()
    assert not paths.GENERATED.exists()


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
        monkeypatch.setattr(nextloc.experiments.results.shutil, "move",
                            failing_after(1, shutil.move))
    else:
        error = KeyboardInterrupt() if where.startswith("Ctrl-C") else OSError(28, "disk full")
        monkeypatch.setattr(nextloc.experiments.results, "update_metrics",
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



# --- the known-place columns (issue 21, item 9) ----------------------------------------------

def write_predictions(runs_dir, experiment, seed, target, rank):
    run = runs_dir / experiment / f"seed_{seed}"
    run.mkdir(parents=True)
    pd.DataFrame({"staypoint_id": range(len(target)), "target": target, "top1": target,
                  "rank": rank}).to_csv(run / "test_predictions.csv.gz", index=False,
                                        compression="gzip")


def old_table(tmp_path, rows):
    """A metrics table as recorded before the known-place columns existed."""
    path = tmp_path / "metrics.csv"
    old = [c for c in GOOD_ROW if c not in nextloc.experiments.results.KNOWN_COLUMNS]
    pd.DataFrame([{**GOOD_ROW, **row} for row in rows])[old].to_csv(path, index=False)
    return path


def test_a_table_without_the_known_columns_still_reads(tmp_path):
    table = read_metrics(old_table(tmp_path, [{}]))
    assert list(table.columns) == nextloc.experiments.results.METRICS_COLUMNS
    assert table[nextloc.experiments.results.KNOWN_COLUMNS].isna().all().all()


def test_a_new_row_must_have_the_known_columns(tmp_path):
    row = {k: v for k, v in GOOD_ROW.items() if k != "test_acc1_known"}
    with pytest.raises(ResultsError, match="test_acc1_known must be a fraction"):
        record_metrics(row, path=tmp_path / "metrics.csv")


def test_fill_known_columns_from_the_saved_predictions_twice(tmp_path):
    from nextloc.experiments.known_places import fill_known_columns

    # x seed 1: 4 targets, one of them the unseen class (1), ranked first; the known targets
    # 5, 7, 9 at ranks 1, 2, 1: Acc@1 3/4, known-place Acc@1 2/3, unseen share 1/4.
    write_predictions(tmp_path / "runs", "x", 1, [1, 5, 7, 9], [1, 1, 2, 1])
    write_predictions(tmp_path / "runs", "y", 2, [3, 4], [1, 5])
    path = old_table(tmp_path, [{"test_acc1": 0.75}, {"experiment": "y", "seed": 2,
                                                      "test_acc1": 0.5}])
    before = pd.read_csv(path)
    assert fill_known_columns(path).endswith("for 2 rows from their saved test predictions; "
                                             "2 rows changed.")
    after = read_metrics(path)
    assert list(after["test_acc1_known"]) == [2 / 3, 0.5]
    assert list(after["test_unseen_share"]) == [0.25, 0.0]
    pd.testing.assert_frame_equal(after[before.columns], before)   # nothing else changed
    text = path.read_bytes()
    assert fill_known_columns(path).endswith("0 rows changed.")    # idempotent
    assert path.read_bytes() == text


def test_fill_refuses_predictions_that_are_not_the_runs(tmp_path):
    from nextloc.experiments.known_places import fill_known_columns

    write_predictions(tmp_path / "runs", "x", 1, [1, 5, 7, 9], [1, 1, 2, 1])
    path = old_table(tmp_path, [{"test_acc1": 0.5}])
    before = path.read_bytes()
    with pytest.raises(ResultsError, match=r"x/seed_1/test_predictions.csv.gz: its Acc@1 is "
                                           r"0.75, the row of x seed 1 .* says test_acc1 = 0.5"):
        fill_known_columns(path)
    assert path.read_bytes() == before


def test_fill_refuses_a_row_without_saved_predictions(tmp_path):
    from nextloc.experiments.known_places import fill_known_columns

    path = old_table(tmp_path, [{}])
    before = path.read_bytes()
    with pytest.raises(ResultsError, match=r"runs/x/seed_1/test_predictions.csv.gz is missing"):
        fill_known_columns(path)
    assert path.read_bytes() == before


def test_the_command_fills_the_projects_table_and_names_a_missing_file(results, capsys):
    from nextloc.cli import main

    assert main(["results", "known"]) == 2
    assert "x/seed_1/test_predictions.csv.gz is missing" in capsys.readouterr().err
    write_predictions(results / "runs", "y", 7, [1, 1, 7, 9, 4, 4, 4, 4, 4, 4], [1] * 3 + [2] * 7)
    (results / "runs" / "x" / "seed_1" / "metrics.json").unlink()
    (results / "runs" / "x" / "seed_1").rmdir()
    write_predictions(results / "runs", "x", 1, [1, 5, 7, 9, 4, 4, 4, 4, 4, 4], [1] * 3 + [2] * 7)
    assert main(["results", "known"]) == 0
    assert "2 rows changed" in capsys.readouterr().out
    table = read_metrics().set_index("experiment")
    assert list(table["test_unseen_share"]) == [0.1, 0.2]            # x, y
    assert list(table["test_acc1_known"]) == [2 / 9, 1 / 8]           # Acc@1 0.3 = 3/10 both


def test_a_new_runs_row_has_the_known_place_columns_and_is_recorded(tmp_path):
    from nextloc.training.loop import RunResult

    # 4 test targets, one unseen (class 1, right); known 5, 5, 6 right once: 1/3, share 1/4
    predictions = pd.DataFrame({"staypoint_id": [1, 2, 3, 4], "target": [1, 5, 5, 6],
                                "top1": [1, 5, 2, 2], "rank": [1, 1, 2, 3]})
    test = {"acc1": 0.5, "acc5": 1.0, "acc10": 1.0, "mrr": 0.7, "ndcg10": 0.8, "f1": 0.4}
    result = RunResult(config={"model": "m", "seed": 3}, n_params=10, best_epoch=2,
                       val={"acc1": 0.4}, test=test, history=[], train_seconds=1.0,
                       device="cpu", test_predictions=predictions)
    row = result.metrics_row("x")
    assert (row["test_acc1_known"], row["test_unseen_share"]) == (1 / 3, 0.25)
    record_metrics(row, path=tmp_path / "metrics.csv")
    assert read_metrics(tmp_path / "metrics.csv")["test_acc1_known"].tolist() == [1 / 3]
