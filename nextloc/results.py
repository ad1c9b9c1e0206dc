"""The committed results: ``results/metrics.csv`` (one row per experiment and seed, written
under a lock), the search tables under ``results/search/``, and archives of superseded runs."""
from __future__ import annotations

import fcntl
import shutil

import pandas as pd

from nextloc import paths
from nextloc.errors import ConfigError

METRICS_COLUMNS = ["experiment", "model", "seed", "n_params", "best_epoch", "val_acc1",
                   "test_acc1", "test_acc5", "test_acc10", "test_mrr", "test_ndcg10", "test_f1",
                   "train_seconds", "device"]


def read_metrics(path=None) -> pd.DataFrame:
    path = path or paths.METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=METRICS_COLUMNS)
    return pd.read_csv(path)


def update_metrics(change, path=None) -> None:
    """Rewrite the metrics table as ``change(table)``; a lock keeps parallel runs from racing."""
    path = path or paths.METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".metrics.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = change(read_metrics(path))
        paths.atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def record_metrics(row: dict, path=None) -> None:
    """Insert or replace the (experiment, seed) row."""
    def replace_row(table: pd.DataFrame) -> pd.DataFrame:
        keep = ~((table["experiment"] == row["experiment"]) & (table["seed"] == row["seed"]))
        table = pd.concat([table[keep], pd.DataFrame([row])], ignore_index=True)
        return table.sort_values(["experiment", "seed"])[METRICS_COLUMNS]

    update_metrics(replace_row, path)


def archive_runs(experiment: str, label: str):
    """Move an experiment's finished runs out of the live results, before a changed configuration
    replaces them: its rows of metrics.csv and its run folders go to results/superseded/<label>/,
    where the book still reports them. Tested configurations are never silently overwritten."""
    target = paths.SUPERSEDED_DIR / label
    if target.exists():
        raise ConfigError(f"{target} exists already; choose another label.")
    table = read_metrics()
    rows = table[table["experiment"] == experiment]
    if rows.empty:
        raise ConfigError(f"no runs of '{experiment}' in {paths.METRICS_FILE} to archive.")
    target.mkdir(parents=True)
    rows.to_csv(target / "metrics.csv", index=False)
    shutil.move(str(paths.RESULTS_DIR / "runs" / experiment), str(target / "runs"))
    notebooks = paths.BOOK_RUNS / experiment
    if notebooks.is_dir():
        shutil.move(str(notebooks), str(target / "notebooks"))
    update_metrics(lambda table: table[table["experiment"] != experiment])
    return target


def search_table_path(name: str):
    return paths.SEARCH_DIR / f"{name}.csv"


def best_trial(name: str) -> pd.Series:
    """The row of a search table with the highest validation Acc@1."""
    path = search_table_path(name)
    if not path.is_file():
        raise ConfigError(f"search '{name}' has no results yet ({path}); run "
                          f"`nextloc search {name}` first.")
    trials = pd.read_csv(path)
    return trials.loc[trials["val_acc1"].idxmax()]
