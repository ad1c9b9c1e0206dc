"""Foursquare NYC beside Geolife (the chapter "A second city"): our sample counts against the
published protocol's, the published figures on that protocol, what transfers from Geolife, and
the chapter's results table read from ``results/metrics.csv`` (the ``fsq_nyc`` rows only).

Why our counts differ from the published test set (12,141 samples): Hong et al.'s preprocessing
(mie-lab/location-prediction, ``preprocessing/foursquare.py`` and ``utils.get_valid_sequence``)
marks a check-in as a valid target when, within its split, it is at least 7 days after the
user's first check-in of that split and has at least **3** earlier check-ins of the user in
that split within the previous 7 days; LLM-Mob published the split files but not that valid-ids
list. Without it every row may be a target and our rule asks for 2 earlier check-ins, as for
Geolife. :func:`sample_counts` counts both rules on the files, so the chapter prints the
difference and whether the published rule reproduces 12,141 (a finding of the code, not typed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.core import paths
from nextloc.data.split import SPLITS, UNSEEN, history_window, split_and_encode
from nextloc.data.dataset_names import dataset_dir, experiment_dataset
from nextloc.data.presplit import read_split_folder
from nextloc.report.road import search_core_hours

DATASET = "fsq_nyc"
PUBLISHED_TEST_SAMPLES = 12_141
# Test Acc@1 on this protocol, as ../shared/data/README.md cites them (fractions).
PUBLISHED = (
    {"method": "LLM-Mob (GPT-3.5, zero-shot)", "acc1": 0.2744, "source": "wang2023llmmob",
     "where": "recomputed from its saved predictions of 12,141 test samples (repository "
              "xlwang233/LLM-Mob, results/fsq/top1/)"},
    {"method": "MHSA", "acc1": 0.2131, "source": "hong2023mhsa",
     "where": "the saved log of a public re-run (repository eamanor8/MHSA, "
              "term-outputs/foursquare/)"},
)
RULES = {"ours: 2 earlier check-ins (as for Geolife)": 2,
         "published valid-ids rule: 3 earlier check-ins": 3}


def sample_counts(folder: str | Path | None = None, previous_day: int = 7) -> pd.DataFrame:
    """Samples per split under each rule of :data:`RULES` (rows), with the published test count
    beside them; every row of the files counted once."""
    rows, _, _ = read_split_folder(folder or dataset_dir(DATASET))
    frame = split_and_encode(rows)
    counts = {}
    for label, minimum in RULES.items():
        counts[label] = {}
        for code, split in enumerate(SPLITS):
            part = frame[frame["split"] == code]
            _, length, old_enough = history_window(part, previous_day)
            counts[label][split] = int((old_enough & (length >= minimum)).sum())
    table = pd.DataFrame(counts).T
    table["published test"] = PUBLISHED_TEST_SAMPLES
    return table


def published_test_ids(folder: str | Path | None = None, previous_day: int = 7) -> np.ndarray:
    """Ids of the test check-ins the published valid-ids rule keeps as targets (>= 3 earlier
    check-ins in the window): the published test set, when it has 12,141 of them."""
    rows, _, _ = read_split_folder(folder or dataset_dir(DATASET))
    frame = split_and_encode(rows)
    test = frame[frame["split"] == SPLITS.index("test")]
    _, length, old_enough = history_window(test, previous_day)
    return test["id"].to_numpy(np.int64)[old_enough & (length >= RULES[list(RULES)[1]])]


def acc1_on_ids(experiment: str, seeds, ids: np.ndarray) -> pd.Series:
    """Per seed, test Acc@1 of a recorded run restricted to the targets ``ids``, from the
    run's saved test predictions (results/runs/EXPERIMENT/seed_S/test_predictions.csv.gz);
    seeds without that file are left out."""
    values = {}
    for seed in seeds:
        path = paths.RESULTS_DIR / "runs" / experiment / f"seed_{seed}" / "test_predictions.csv.gz"
        if path.is_file():
            predictions = pd.read_csv(path, usecols=["staypoint_id", "rank"])
            kept = predictions[predictions["staypoint_id"].isin(ids)]
            values[seed] = float((kept["rank"] == 1).mean())
    return pd.Series(values, dtype=np.float64)


def count_explanation(table: pd.DataFrame) -> str:
    """One paragraph on how our test count relates to the published one, from the counts."""
    ours, published_rule = (int(table.loc[label, "test"]) for label in RULES)
    match = ("reproduces it exactly" if published_rule == PUBLISHED_TEST_SAMPLES else
             f"gives {published_rule:,}, {published_rule - PUBLISHED_TEST_SAMPLES:+,} from it")
    return (f"Our rule gives {ours:,} test samples against the published {PUBLISHED_TEST_SAMPLES:,} "
            f"({ours - PUBLISHED_TEST_SAMPLES:+,}). The published protocol keeps as targets only "
            f"the check-ins with at least 3 earlier check-ins of the user in the same split within "
            f"7 days (Hong et al.'s valid-ids filter, not published with the split files); our "
            f"loader, which has no valid-ids file here, asks for 2, as for Geolife. Applied to the "
            f"published files, the 3-check-in rule {match}. Our results are on our "
            f"{ours:,} samples; the {ours - published_rule:,} extra ones have the shortest "
            f"histories.")


def published_table() -> pd.DataFrame:
    return pd.DataFrame([{"method": p["method"], "test Acc@1 (%)": 100 * p["acc1"],
                          "source": p["where"]} for p in PUBLISHED])


def transfer_facts(data) -> pd.DataFrame:
    """Per split: samples, the unseen-class share of targets, the share of targets found in the
    7-day history, the median history length, and whether every duration is 0."""
    facts = {}
    for name, split in data.splits.items():
        in_history = [t in split.location[a:b] for t, a, b in
                      zip(split.target, split.offsets[:-1], split.offsets[1:])]
        facts[name] = {"samples": len(split), "unseen-class share of targets":
                       float(np.mean(split.target == UNSEEN)),
                       "target in the 7-day history": float(np.mean(in_history)),
                       "median history length": float(np.median(split.lengths)),
                       "durations all 0": bool((split.duration == 0).all())}
    return pd.DataFrame(facts)


def _mean_std(values: pd.Series, scale: float = 100.0) -> str:
    values = values.dropna() * scale
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def chapter_experiments(experiments: dict) -> list[str]:
    """The registry's experiments on this dataset, in registry order."""
    return [name for name, spec in experiments.items() if spec.get("dataset") == DATASET]


def results_table(metrics: pd.DataFrame, experiments: dict,
                  published_ids: np.ndarray | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(one row per experiment of this dataset that has runs: test metrics in % as mean ± std
    over its seeds, with Acc@1 on the published test set's targets when ``published_ids`` are
    given; the runs still missing, as text). ``metrics`` holds the fsq_nyc rows."""
    rows, missing = [], []
    for name in chapter_experiments(experiments):
        spec = experiments[name]
        runs = metrics[(metrics["experiment"] == name) & metrics["seed"].isin(spec["seeds"])]
        if len(runs) < len(spec["seeds"]):
            missing.append(f"{name} ({len(spec['seeds']) - len(runs)} of "
                           f"{len(spec['seeds'])} seeds)")
        if runs.empty:
            continue
        # short headers: the chapter's page is as narrow as the book's text column
        rows.append({"experiment": name,
                     "protocol": "B" if spec.get("refit") else "A", "seeds": len(runs),
                     "Acc@1": _mean_std(runs["test_acc1"]),
                     "Acc@5": _mean_std(runs["test_acc5"]),
                     "MRR": _mean_std(runs["test_mrr"]),
                     "Acc@1, known places": _mean_std(runs["test_acc1_known"]),
                     **({} if published_ids is None else {
                         "Acc@1, published test set": _mean_std(acc1_on_ids(
                             name, runs["seed"].astype(int), published_ids))}),
                     "parameters": f"{int(runs['n_params'].iloc[0]):,}",
                     "training s per run": f"{runs['train_seconds'].mean():,.0f}"})
    return pd.DataFrame(rows), missing


def missing_sentence(missing: list[str]) -> str:
    if not missing:
        return "Every run of this chapter's experiments has finished."
    return ("Still missing (registered, not yet run; the table fills in when `nextloc run` has "
            "recorded them): " + "; ".join(missing) + ".")


def compute_line(metrics: pd.DataFrame, searches: dict) -> str:
    """The training compute of the recorded runs of this dataset and of its searches."""
    if metrics.empty:
        return "No run of this dataset is recorded yet."
    seconds = float(metrics["train_seconds"].sum())
    line = (f"{len(metrics)} recorded runs, {seconds / 3600:.2f} core-hours of training in all "
            f"(the `train_seconds` of results/metrics.csv, one thread per run).")
    names = [name for name, spec in searches.items() if experiment_dataset(spec) == DATASET]
    if names:
        line += (f" The settings search on this dataset's validation split "
                 f"({', '.join(f'`{name}`' for name in names)}) trained "
                 f"{search_core_hours(names):.2f} core-hours more (results/search/).")
    return line


def lead_sentence(metrics: pd.DataFrame, experiments: dict) -> str:
    """The best pointer-family experiment of protocol A (by mean validation Acc@1) against
    Markov's test Acc@1, in points, once both have runs."""
    names = [n for n in chapter_experiments(experiments)
             if experiments[n]["model"].startswith("pointer") and not experiments[n].get("refit")]
    runs = metrics[metrics["experiment"].isin(names)]
    markov = metrics[metrics["experiment"] == "fsq_markov"]
    if runs.empty or markov.empty:
        return ("The pointer family's lead over Markov is reported here once both have runs on "
                "this dataset.")
    best = runs.groupby("experiment")["val_acc1"].mean().idxmax()  # chosen on validation
    chosen = runs[runs["experiment"] == best]
    lead = 100 * (chosen["test_acc1"].mean() - markov["test_acc1"].mean())
    return (f"The pointer-family experiment with the best validation Acc@1, `{best}` "
            f"({len(chosen)} seeds), leads Markov by {lead:+.2f} points of test Acc@1.")


def parameter_counts(experiments: dict, num_locations: int, num_users: int) -> pd.Series:
    """Parameters of each trained model of this chapter, built on this dataset's vocabulary
    (``sum(p.numel())``, as the budget counts them)."""
    from nextloc.models.base import build_model, count_parameters
    from nextloc.experiments.registry import experiment_settings, train_config

    counts = {}
    for name in chapter_experiments(experiments):
        config = train_config(experiment_settings(name, resolve_epochs=False))
        if config.model in ("persistent", "history_most_frequent", "user_most_frequent", "markov"):
            continue
        model = build_model(config.model, num_locations, num_users, over_budget_ok=True,
                            **config.model_options)
        counts[name] = count_parameters(model)
    return pd.Series(counts, name="parameters", dtype=np.int64)
