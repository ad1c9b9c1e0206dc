"""Per-sample error analysis: join saved test predictions with what the sample looked like."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nextloc.data import UNSEEN, Split
from nextloc.paths import RESULTS_DIR

LENGTH_BINS = [2, 6, 11, 16, 21, 31, 61]


def sample_features(split: Split) -> pd.DataFrame:
    """One row per sample: user, target, whether the target occurs in the history, and so on."""
    rows = np.repeat(np.arange(len(split)), split.lengths)
    in_history = np.zeros(len(split), dtype=bool)
    np.logical_or.at(in_history, rows, split.location == split.target[rows])
    return pd.DataFrame({
        "staypoint_id": split.staypoint_id, "user": split.user, "target": split.target,
        "in_history": in_history, "unseen": split.target == UNSEEN,
        "weekend": split.target_weekday >= 5,
        "length_bin": pd.cut(split.lengths, LENGTH_BINS, right=False,
                             labels=[f"{a}-{b - 1}" for a, b in zip(LENGTH_BINS, LENGTH_BINS[1:])]),
    })


def per_sample_frame(split: Split, experiments: list[str]) -> pd.DataFrame:
    """The saved test predictions of every run of ``experiments``, one row per (run, sample)."""
    features = sample_features(split)
    parts = []
    for experiment in experiments:
        for run in sorted((RESULTS_DIR / "runs" / experiment).glob("seed_*")):
            predictions = pd.read_csv(run / "test_predictions.csv.gz")
            if not np.array_equal(predictions["staypoint_id"], features["staypoint_id"]):
                raise ValueError(f"{run}: predictions do not match the test split's samples")
            parts.append(features.assign(
                experiment=experiment, seed=int(run.name.removeprefix("seed_")),
                run=f"{experiment}/{run.name}", correct=(predictions["rank"] == 1).to_numpy()))
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under {RESULTS_DIR / 'runs'}; "
                                f"run `nextloc run {' '.join(experiments)}` first")
    return pd.concat(parts, ignore_index=True)


def accuracy_by(samples: pd.DataFrame, column: str) -> pd.DataFrame:
    """Acc@1 per (group, experiment), averaged over seeds, plus each group's share of samples."""
    per_seed = samples.groupby(["experiment", column, "seed"], observed=True)["correct"].mean()
    table = per_seed.groupby(["experiment", column], observed=True).mean().unstack(0)
    one_run = samples[samples["run"] == samples["run"].iloc[0]]
    table["share of samples"] = one_run[column].value_counts(normalize=True)
    return table


def learning_curves(experiments: list[str]) -> pd.DataFrame:
    """The per-epoch history of every saved run of ``experiments``, one row per (run, epoch)."""
    parts = [pd.read_csv(run / "history.csv").assign(
                 experiment=experiment, seed=int(run.name.removeprefix("seed_")))
             for experiment in experiments
             for run in sorted((RESULTS_DIR / "runs" / experiment).glob("seed_*"))
             if (run / "history.csv").is_file()]
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under {RESULTS_DIR / 'runs'}; "
                                f"run `nextloc run {' '.join(experiments)}` first")
    return pd.concat(parts, ignore_index=True)
