"""Generated tables that read the saved per-sample test predictions: the statistics of every
claim's comparison (t interval over seeds beside a bootstrap over test users), and the
decomposition of the validation-test gap. Also the archived (superseded) runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.report.analysis import correct_by_seed, gap_decomposition, predicts_unseen
from nextloc.data.split import UNSEEN, load_dataset
from nextloc.core.errors import DataError, ResultsError
from nextloc.core import paths
from nextloc.experiments.results import read_metrics
from nextloc.report.stats import LEVEL, two_stage_bootstrap
from nextloc.report.tables import markdown_table, mean_std, write

GAP_EXPERIMENTS = ["markov", "baseline", "baseline_patience_5", "advanced_v1", "conservative_v1",
                   "ultra_advanced", "memory_graph", "pointer", "pointer_pair"]


def test_split():
    """The test split (for user ids), or None when the data is not available."""
    try:
        return load_dataset().splits["test"]
    except (DataError, FileNotFoundError):
        return None


def seed_columns(name: str, seeds: tuple[int, ...], cache: dict) -> np.ndarray | None:
    """(seeds x samples) 0/1 correctness of ``name`` on ``seeds``; a rule without weights (one
    saved run) stands for every seed; None when the predictions are not saved."""
    if name not in cache:
        cache[name] = correct_by_seed(name)
    frame = cache[name]
    if frame.empty:
        return None
    if frame.shape[1] == 1 and not set(seeds) <= set(frame.columns):
        frame = pd.DataFrame({seed: frame.iloc[:, 0] for seed in seeds})
    if not set(seeds) <= set(frame.columns):
        return None
    return frame[list(seeds)].to_numpy(dtype=float).T


def bootstrap_text(result, split, cache: dict) -> str:
    arm = result.arm
    if arm.value is not None or arm.seeds is not None:
        return "n/a: not a comparison of two experiments"
    if arm.metric != "test_acc1" or arm.versus_metric not in (None, "test_acc1"):
        return "n/a: no per-sample validation predictions"
    if split is None:
        return "n/a: the data is not available here"
    seeds = result.comparison.seeds
    a, b = (seed_columns(name, seeds, cache) for name in (arm.experiment, arm.versus))
    if a is None or b is None:
        return "n/a: per-sample predictions not saved"
    low, high = two_stage_bootstrap(a, b, split.user)
    return f"[{low:+.2f}, {high:+.2f}]"


def listed(differences, shown: int = 10) -> str:
    """The first ``shown`` per-seed differences; a longer list is cut, so that one comparison over
    dozens of experiments does not take the table's width from the intervals."""
    values = ", ".join(f"{d:+.1f}" for d in list(differences)[:shown])
    return values if len(differences) <= shown else f"{values}, … ({len(differences)} in all)"


def statistics_table(book) -> pd.DataFrame:
    """Every finished comparison of the claims: per-seed differences, the paired t interval and
    q-value the verdict uses, and the two-stage bootstrap (seeds, then test users)."""
    split, cache, rows = test_split(), {}, []
    for claim in book.claims:
        for result in claim.arms:
            comparison = result.comparison
            if comparison is None:
                continue
            rows.append({"comparison": result.arm.label(), "seeds": comparison.n,
                         "per-seed differences": listed(comparison.differences),
                         "mean": f"{comparison.mean:+.2f}",
                         "t interval": f"[{comparison.low:+.2f}, {comparison.high:+.2f}]",
                         "q": f"{result.q:.3f}",
                         "seeds + users bootstrap": bootstrap_text(result, split, cache)})
    return pd.DataFrame(rows).drop_duplicates("comparison")


def gap_row(metrics: pd.DataFrame, name: str, shares: tuple[float, float], unseen: np.ndarray):
    runs = metrics[metrics["experiment"] == name].set_index("seed")
    correct = correct_by_seed(name)
    if runs.empty or correct.empty or runs["val_acc1"].isna().all():
        return None
    known = correct[~unseen].mean()
    hits = correct[unseen].mean()
    row = {"experiment": f"`{name}`", "seeds": len(runs),
           "val Acc@1 %": mean_std(runs["val_acc1"]), "test Acc@1 %": mean_std(runs["test_acc1"]),
           "test Acc@1 on unseen targets %": f"{100 * hits.mean():.2f}",
           "test Acc@1 on known places %": f"{100 * known.mean():.2f}"}
    gap = 100 * (runs["val_acc1"] - runs["test_acc1"])
    row["val − test, points"] = f"{gap.mean():+.2f}"
    if predicts_unseen(name):
        return {**row, "from the unseen share": "not measured (predicts the unseen class)",
                "from known places": "not measured"}
    parts = [gap_decomposition(runs.loc[seed, "val_acc1"], *shares, known[seed], hits[seed])
             for seed in correct.columns if seed in runs.index]
    return {**row,
            "from the unseen share": f"{100 * np.mean([p['from unseen share'] for p in parts]):+.2f}",
            "from known places": f"{100 * np.mean([p['from known places'] for p in parts]):+.2f}"}


def gap_table(metrics: pd.DataFrame,
              headline: list[str]) -> tuple[pd.DataFrame, tuple[float, float]] | None:
    """The validation-test gap of early-stopped experiments (and of the ``headline``, trained on
    train only), decomposed where the model never predicts the unseen class (see
    :func:`nextloc.report.analysis.gap_decomposition`)."""
    try:
        data = load_dataset()
    except (DataError, FileNotFoundError):
        return None
    unseen = data.splits["test"].target == UNSEEN
    shares = (float((data.splits["validation"].target == UNSEEN).mean()), float(unseen.mean()))
    rows = [gap_row(metrics, name, shares, unseen)
            for name in dict.fromkeys(GAP_EXPERIMENTS + headline)]
    return pd.DataFrame([r for r in rows if r is not None]), shares


def rank_agreement(metrics: pd.DataFrame) -> str:
    """How closely validation ranks the experiments the way test does (Spearman's rho over the
    experiments' means), and the experiment whose rank moves most."""
    from scipy.stats import spearmanr

    means = metrics.dropna(subset=["val_acc1"]).groupby("experiment")[
        ["val_acc1", "test_acc1"]].mean()
    if len(means) < 3:
        return ""
    ranks = means.rank(ascending=False)
    moved = (ranks["val_acc1"] - ranks["test_acc1"]).abs().idxmax()
    rho = spearmanr(means["val_acc1"], means["test_acc1"]).statistic
    return (f"Across the {len(means)} experiments with a validation score, Spearman's rank "
            f"correlation between their mean validation and mean test Acc@1 is {rho:.2f}. The "
            f"experiment whose rank moves most is `{moved}`: {ranks.loc[moved, 'val_acc1']:.0f}"
            f" of {len(means)} on validation, {ranks.loc[moved, 'test_acc1']:.0f} on test.\n")


def superseded_table() -> pd.DataFrame:
    """Runs archived by ``nextloc archive`` when a later validation step changed the config."""
    rows = []
    for folder in sorted((paths.RESULTS_DIR / "superseded").glob("[!.]*")):  # not a staging folder
        if not (folder / "metrics.csv").is_file():
            raise ResultsError(f"{folder}: an archive without its metrics.csv; restore it (git "
                               f"checkout) or remove the folder.")
        runs = read_metrics(folder / "metrics.csv")
        rows.append({"archived as": folder.name, "experiment": f"`{runs['experiment'].iloc[0]}`",
                     "seeds": len(runs), "parameters": f"{int(runs['n_params'].iloc[0]):,}",
                     "val Acc@1 %": (mean_std(runs["val_acc1"]) if runs["val_acc1"].notna().any()
                                     else "n/a: refit"),
                     "test Acc@1 %": mean_std(runs["test_acc1"]),
                     "test Acc@5 %": mean_std(runs["test_acc5"])})
    return pd.DataFrame(rows)


def write_extra(metrics: pd.DataFrame, registry: dict, book) -> list[Path]:
    written = [write("superseded", markdown_table(superseded_table(), empty="No archived runs.\n")),
             write("statistics", markdown_table(statistics_table(book),
                                                empty="No finished comparisons yet.\n")
                   + f"\nIntervals at {100 * LEVEL:.0f} %, in points of test Acc@1.\n")]
    gap = gap_table(metrics, [n for n in [(registry.get("headline") or {}).get("train_only")]
                              if n])
    if gap is None:
        text = "The data is not available here, so the gap is not decomposed.\n"
    else:
        table, (val_share, test_share) = gap
        text = (markdown_table(table) + f"\nUnseen-class share of the targets: "
                f"{100 * val_share:.2f} % in validation, {100 * test_share:.2f} % in test.\n")
    written.append(write("gap", text))
    written.append(write("rank_agreement", rank_agreement(metrics)))
    return written
