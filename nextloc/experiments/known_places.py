"""``nextloc results known``: fill the known-place columns of ``results/metrics.csv``
(``test_acc1_known``, ``test_unseen_share``; see :func:`nextloc.training.metrics.known_places`) for
every row from that run's saved ``results/runs/<experiment>/seed_<seed>/test_predictions.csv.gz``,
without retraining. A run recorded since the columns exist writes them itself; this fills the
rows recorded before. Idempotent: it recomputes every row, so running it twice changes nothing
the second time."""
from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from nextloc.core import paths
from nextloc.core.errors import ResultsError, shorten
from nextloc.training.metrics import known_places
from nextloc.experiments.results import KNOWN_COLUMNS, METRICS_COLUMNS, update_metrics

# The predictions' Acc@1 must equal the row's test_acc1 this closely: the guard that the file
# is the run's (both are the same count divided by the same number of samples).
TOLERANCE = 1e-9


def row_values(experiment: str, seed: int, test_acc1: float, runs_dir: Path) -> dict:
    """The known-place columns of one row, from its run's saved test predictions."""
    path = runs_dir / experiment / f"seed_{seed}" / "test_predictions.csv.gz"
    run = f"{experiment} seed {seed}"
    if not path.is_file():
        raise ResultsError(f"{path} is missing: the row of {run} has no saved test predictions "
                           f"to compute its known-place Acc@1 from; restore the file (git "
                           f"checkout) or re-run the run (`nextloc run {experiment} --seeds "
                           f"{seed} --force`). Nothing was written.")
    try:
        predictions = pd.read_csv(path, usecols=["target", "rank"])
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise ResultsError(f"{path}: not readable as test predictions with columns target and "
                           f"rank ({shorten(err, 100)}). Nothing was written.") from None
    acc1 = float((predictions["rank"] == 1).mean())
    if not abs(acc1 - test_acc1) <= TOLERANCE:
        raise ResultsError(f"{path}: its Acc@1 is {acc1!r}, the row of {run} in metrics.csv "
                           f"says test_acc1 = {test_acc1!r}; these are not that run's "
                           f"predictions. Nothing was written.")
    return {f"test_{name}": value
            for name, value in known_places(predictions["target"], predictions["rank"]).items()}


def fill_known_columns(path: Path | None = None, runs_dir: Path | None = None) -> str:
    """Recompute both columns for every row of ``path`` (default ``results/metrics.csv``) from
    ``runs_dir`` (default: ``runs/`` beside it), all or nothing, under the table's lock; no
    other value changes. Returns a one-line summary."""
    path = Path(path or paths.METRICS_FILE)
    runs_dir = Path(runs_dir or path.parent / "runs")
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: no recorded runs to fill.")
    counts = {}

    def fill(table: pd.DataFrame) -> pd.DataFrame:
        values = pd.DataFrame([row_values(row.experiment, int(row.seed), row.test_acc1, runs_dir)
                               for row in table.itertuples()], index=table.index,
                              columns=KNOWN_COLUMNS)
        same = ((table[KNOWN_COLUMNS] - values).abs() <= TOLERANCE).all(axis=1)  # NaN: changed
        counts.update(rows=len(table), changed=int((~same).sum()))
        return table.assign(**{c: values[c] for c in KNOWN_COLUMNS})[METRICS_COLUMNS]

    update_metrics(fill, path)
    return (f"{path}: {', '.join(KNOWN_COLUMNS)} computed for {counts['rows']} rows from their "
            f"saved test predictions; {counts['changed']} rows changed.")
