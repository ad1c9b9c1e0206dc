"""The committed results: ``results/metrics.csv`` (one row per experiment and seed, written
under a lock), the search tables under ``results/search/``, and archives of superseded runs.

Every table is checked line by line when it is read: a truncated or garbled line stops the
command with a message naming the file and the line, so that no blank or half row is ever
reported in the book or written back by the next recording."""
from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from nextloc.core import paths
from nextloc.core.errors import ConfigError, ResultsError, os_error_text, shorten

# test_acc1_known: Acc@1 over the test targets that are not the unseen-location class;
# test_unseen_share: the share of test targets that are (see nextloc.training.metrics.known_places).
KNOWN_COLUMNS = ["test_acc1_known", "test_unseen_share"]
# dataset: the registry's name of the data a run used (nextloc.data.dataset_names); the report's
# tables, claims and headline read the Geolife rows only unless a chapter asks for another.
DEFAULT_DATASET = "geolife"
METRICS_COLUMNS = ["experiment", "model", "seed", "n_params", "best_epoch", "val_acc1",
                   "test_acc1", "test_acc5", "test_acc10", "test_mrr", "test_ndcg10", "test_f1",
                   "train_seconds", "device", *KNOWN_COLUMNS, "dataset"]
# What each column must hold: text, an integer, a fraction in [0, 1] (val_acc1 is empty for
# refits, which choose no epoch on validation), or a non-negative number.
METRICS_KINDS = {"experiment": "text", "model": "text", "seed": "integer", "n_params": "integer",
                 "best_epoch": "integer", "val_acc1": "fraction or empty",
                 **{c: "fraction" for c in METRICS_COLUMNS[6:12]}, "train_seconds": "number",
                 "device": "text", **{c: "fraction" for c in KNOWN_COLUMNS}, "dataset": "text"}
# A row recorded before KNOWN_COLUMNS existed has them empty, and an older table (an archive
# in results/superseded/) lacks them, until `nextloc results known` fills them from the run's
# saved predictions; a new row must have them.
READ_KINDS = {**METRICS_KINDS, **{c: "fraction or empty" for c in KNOWN_COLUMNS}}
SEARCH_KINDS = {"trial": "JSON object", "val_acc1": "fraction or empty"}  # empty: pruned
DESCRIPTIONS = {"text": "non-empty text", "integer": "an integer >= 0",
                "fraction": "a fraction in [0, 1]", "fraction or empty": "a fraction in [0, 1] "
                "or empty", "number": "a finite number >= 0", "JSON object": "a JSON object"}


def _is_kind(value: str, kind: str) -> bool:
    if kind == "text":
        return bool(value.strip())
    if kind == "JSON object":
        try:
            return isinstance(json.loads(value), dict)
        except ValueError:
            return False
    if kind.endswith("or empty") and value == "":
        return True
    try:
        number = float(value)
    except ValueError:
        return False
    if kind == "integer":
        return number.is_integer() and number >= 0
    if kind.startswith("fraction"):
        return 0 <= number <= 1
    return math.isfinite(number) and number >= 0


def _row_problem(row: list[str], header: list[str], kinds: dict[str, str]) -> str | None:
    if not row:
        return None  # a blank line: pandas skips it, the next rewrite drops it
    if len(row) != len(header):
        return f"{len(row)} fields, the header has {len(header)} (a truncated or garbled line)"
    for column, kind in kinds.items():
        value = row[header.index(column)]
        if not _is_kind(value, kind):
            return f"{column} must be {DESCRIPTIONS[kind]}, got {shorten(repr(value), 40)}"
    return None


def check_table(path, kinds: dict[str, str], fix: str, optional=()) -> None:
    """Raise a ResultsError naming ``path`` and the line of the first line that lacks a field of
    the header, or whose ``kinds`` columns hold the wrong kind of value; the header may lack
    the ``optional`` columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
            missing = [column for column in kinds if column not in header]
            if set(missing) <= set(optional):
                kinds = {c: kind for c, kind in kinds.items() if c not in missing}
                missing = []
            if missing:
                raise ResultsError(f"{path} line 1: the header lacks column(s) {missing}; {fix}")
            for row in reader:
                problem = _row_problem(row, header, kinds)
                if problem:
                    raise ResultsError(f"{path} line {reader.line_num}: {problem}; {fix}")
        except csv.Error as err:
            raise ResultsError(f"{path} line {reader.line_num}: not a readable CSV line "
                               f"({shorten(err, 80)}); {fix}") from None
        except UnicodeDecodeError:
            raise ResultsError(f"{path}: not UTF-8 text after line {reader.line_num}; "
                               f"{fix}") from None


def read_metrics(path=None, dataset: str | None = DEFAULT_DATASET) -> pd.DataFrame:
    """The rows of one dataset (default Geolife's, what the report's tables, claims and
    headline read); ``dataset=None``: every row. A table without the ``dataset`` column (an
    archive made before it existed) holds Geolife's runs."""
    path = path or paths.METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=METRICS_COLUMNS)
    check_table(path, READ_KINDS, "fix or delete that line (`git diff` shows what changed; "
                "a deleted run's row comes back when `nextloc run` re-runs it).",
                optional=[*KNOWN_COLUMNS, "dataset"])
    table = pd.read_csv(path, dtype={"dataset": str})
    check_one_row_per_run(path, table)
    table = table.assign(**{c: float("nan") for c in KNOWN_COLUMNS if c not in table})
    if "dataset" not in table:
        table["dataset"] = DEFAULT_DATASET
    if dataset is None:
        return table
    return table[table["dataset"] == dataset].reset_index(drop=True)


def check_one_row_per_run(path: Path, table: pd.DataFrame) -> None:
    """One row per (experiment, seed): a second copy (a merge of two branches) was counted twice
    in every mean, interval and seed count of the report."""
    twice = table.duplicated(["experiment", "seed"])
    if not twice.any():
        return
    experiment, seed = table.loc[twice.idxmax(), "experiment"], int(table.loc[twice.idxmax(),
                                                                              "seed"])
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)  # line numbers of the file, blank lines included
        lines = [reader.line_num for row in reader
                 if row["experiment"] == experiment and row["seed"].strip() == str(seed)]
    where = f"lines {lines[0]} and {lines[1]}" if len(lines) > 1 else "two lines"
    raise ResultsError(f"{path} {where}: two rows for {shorten(experiment, 60)} seed {seed}; "
                       f"delete one (`git diff` shows which is new).")


def update_metrics(change, path=None) -> None:
    """Rewrite the metrics table as ``change(table)``; a lock keeps parallel runs from racing."""
    path = path or paths.METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".metrics.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = change(read_metrics(path, dataset=None))
        paths.atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def record_metrics(row: dict, path=None) -> None:
    """Insert or replace the (experiment, seed) row; a row with a missing or out-of-range value
    is refused before the table is touched."""
    row = {"dataset": DEFAULT_DATASET, **row}
    fields = ["" if row.get(c) is None or row[c] != row[c] else str(row[c])  # NaN -> empty
              for c in METRICS_COLUMNS]
    problem = _row_problem(fields, METRICS_COLUMNS, METRICS_KINDS)
    if problem:
        raise ResultsError(f"refusing to record {shorten(row.get('experiment'), 60)} seed "
                           f"{row.get('seed')}: {problem}.")

    def replace_row(table: pd.DataFrame) -> pd.DataFrame:
        keep = ~((table["experiment"] == row["experiment"]) & (table["seed"] == row["seed"]))
        table = pd.concat([table[keep], pd.DataFrame([row])], ignore_index=True)
        return table.sort_values(["experiment", "seed"])[METRICS_COLUMNS]

    update_metrics(replace_row, path)


def archive_runs(experiment: str, label: str) -> Path:
    """Move an experiment's finished runs out of the live results, before a changed configuration
    replaces them: its rows of metrics.csv and its run folders go to results/superseded/<label>/,
    where the book still reports them. Tested configurations are never silently overwritten.

    All or nothing: everything is first moved into a hidden staging folder, which is renamed to
    its label before the rows leave metrics.csv; a failure at any step moves everything back."""
    if not paths.is_plain_name(label):
        raise ConfigError(f"--as {shorten(repr(label), 60)}: an archive label must be a plain "
                          f"name (letters, digits, _ . -), not a path.")
    target = paths.SUPERSEDED_DIR / label
    if target.exists():
        raise ConfigError(f"{target} exists already; choose another label.")
    rows = read_metrics(dataset=None)
    rows = rows[rows["experiment"] == experiment]
    if rows.empty:
        raise ConfigError(f"no runs of '{experiment}' in {paths.METRICS_FILE} to archive.")
    paths.SUPERSEDED_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{label}.", dir=paths.SUPERSEDED_DIR))
    moved: list[tuple[Path, Path]] = []
    try:
        rows.to_csv(staging / "metrics.csv", index=False)
        for source, name in ((paths.RESULTS_DIR / "runs" / experiment, "runs"),
                             (paths.BOOK_RUNS / experiment, "notebooks")):
            if source.is_dir():
                shutil.move(str(source), str(staging / name))
                moved.append((source, staging / name))
        os.rename(staging, target)
        moved = [(source, target / place.name) for source, place in moved]
        staging = target
        update_metrics(lambda table: table[table["experiment"] != experiment])
    except BaseException as err:
        _undo(moved, staging)
        if isinstance(err, OSError):
            cause = os_error_text(err, target / "metrics.csv")  # to_csv names no file
            raise ResultsError(f"archiving '{experiment}' failed ({shorten(cause, 300)}); "
                               f"nothing was archived, every file is back in place.") from err
        raise
    return target


def _undo(moved: list[tuple[Path, Path]], staging: Path) -> None:
    for source, place in reversed(moved):
        shutil.move(str(place), str(source))
    shutil.rmtree(staging, ignore_errors=True)


def search_table_path(name: str):
    return paths.SEARCH_DIR / f"{name}.csv"


def read_search_table(path) -> pd.DataFrame:
    """A search's trials (``trial`` as JSON, ``val_acc1``), checked line by line."""
    check_table(path, SEARCH_KINDS, "fix or delete that line; the search re-runs deleted "
                "trials when it is run again.")
    return pd.read_csv(path)


def best_trial(name: str) -> pd.Series:
    """The row of a search table with the highest validation Acc@1."""
    path = search_table_path(name)
    if not path.is_file():
        raise ConfigError(f"search '{name}' has no results yet ({path}); run "
                           f"`nextloc search {name}` first.")
    trials = read_search_table(path).dropna(subset=["val_acc1"])  # pruned trials have no score
    if trials.empty:
        raise ConfigError(f"search '{name}' has no finished trials yet ({path}); run "
                          f"`nextloc search {name}`.")
    return trials.loc[trials["val_acc1"].idxmax()]
