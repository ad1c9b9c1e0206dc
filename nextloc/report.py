"""The book's tables, generated from ``results/metrics.csv`` and the search results, and its
table of contents, which lists only the runs that exist.

Each table is a MyST markdown file under ``book/generated/`` that a chapter includes; nothing in
them is typed by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.paths import PROJECT_ROOT, RESULTS_DIR
from nextloc.registry import load_registry
from nextloc.results import read_metrics
from nextloc.toc import write_toc

GENERATED = PROJECT_ROOT / "book" / "generated"
SUMMARY_METRICS = ("test_acc1", "test_acc5", "test_acc10", "test_mrr", "test_ndcg10", "test_f1",
                   "val_acc1")


def mean_std(values: pd.Series, percent: bool = True) -> str:
    scale = 100 if percent else 1
    values = values.dropna() * scale
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: mean ± std over seeds (sample std), min-max of test Acc@1."""
    registry = load_registry()["experiments"]
    rows = []
    for name, runs in metrics.groupby("experiment", sort=False):
        seed_figure = registry.get(name, {}).get("prior_report_acc1")
        rows.append({
            "experiment": name,
            "seeds": len(runs),
            "parameters": f"{int(runs['n_params'].iloc[0]):,}",
            "seed report Acc@1": f"{100 * seed_figure:.2f}" if seed_figure else "–",
            **{column: mean_std(runs[column]) for column in SUMMARY_METRICS},
            "test Acc@1 min–max": f"{100 * runs['test_acc1'].min():.2f}–"
                                  f"{100 * runs['test_acc1'].max():.2f}",
            "best epoch": f"{runs['best_epoch'].median():.0f}",
            "train s": f"{runs['train_seconds'].mean():.0f}",
        })
    table = pd.DataFrame(rows)
    return table.rename(columns={"test_acc1": "Acc@1 %", "test_acc5": "Acc@5 %",
                                 "test_acc10": "Acc@10 %", "test_mrr": "MRR %",
                                 "test_ndcg10": "NDCG@10 %", "test_f1": "F1 %",
                                 "val_acc1": "val Acc@1 %"})


def markdown_table(frame: pd.DataFrame, empty: str | None = None) -> str:
    """``frame`` as a MyST table; ``empty``, if given, is the text written instead of an empty
    table."""
    if empty is not None and frame.empty:
        return empty
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write(name: str, text: str) -> Path:
    GENERATED.mkdir(parents=True, exist_ok=True)
    path = GENERATED / f"{name}.md"
    path.write_text(text)
    return path


def seed_comparison(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each experiment the seed report ran: its single-run figure against our seeds."""
    rows = []
    for name, spec in load_registry()["experiments"].items():
        runs = metrics.loc[metrics["experiment"] == name, "test_acc1"] * 100
        figure = spec.get("prior_report_acc1")
        if figure is None or runs.empty:
            continue
        figure *= 100
        mean, std = runs.mean(), runs.std(ddof=1)
        if runs.min() <= figure <= runs.max():
            where = "inside the range of our seeds"
        else:
            where = f"{'above' if figure > runs.max() else 'below'} all {len(runs)} of our seeds"
        rows.append({"experiment": name, "seed report Acc@1 %": f"{figure:.2f}",
                     "ours, mean ± std %": mean_std(runs / 100),
                     "ours, min–max %": f"{runs.min():.2f}–{runs.max():.2f}",
                     "difference / our std": f"{(figure - mean) / std:+.1f}" if std > 0 else "–",
                     "the seed's figure is": where})
    return pd.DataFrame(rows)


def prior_report_seed_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Our runs beside the seed report's runs with the same seed, where it names seeds."""
    rows = []
    for name, spec in load_registry()["experiments"].items():
        for seed, figure in spec.get("prior_report_by_seed", {}).items():
            ours = metrics[(metrics["experiment"] == name) & (metrics["seed"] == seed)]
            if not ours.empty:
                rows.append({"experiment": name, "seed": seed,
                             "seed report test Acc@1 %": f"{100 * figure:.2f}",
                             "ours %": f"{100 * ours['test_acc1'].iloc[0]:.2f}",
                             "ours, best epoch": int(ours["best_epoch"].iloc[0])})
    return pd.DataFrame(rows)


def on_shared_seeds(metrics: pd.DataFrame, experiment: str,
                    versus: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs of two experiments on the seeds both have, so that seed luck cancels out."""
    first = metrics[metrics["experiment"] == experiment]
    second = metrics[metrics["experiment"] == versus]
    shared = set(first["seed"]) & set(second["seed"])
    return first[first["seed"].isin(shared)], second[second["seed"].isin(shared)]


def difference_and_spread(runs: pd.Series, reference: pd.Series) -> tuple[float, float]:
    """Difference of the means and the larger of the two standard deviations, in points."""
    return (100 * (runs.mean() - reference.mean()),
            100 * np.nanmax([runs.std(ddof=1), reference.std(ddof=1)]))


def verdict(runs: pd.Series, reference: pd.Series, expected: str) -> tuple[str, str]:
    """Compare test Acc@1 of two experiments against the claim that the first is ``expected``
    ('better' or 'worse') than the second. A difference within the larger of the two seed
    standard deviations is not told apart from seed noise."""
    difference, spread = difference_and_spread(runs, reference)
    summary = f"{difference:+.2f} (spread {spread:.2f})"
    if abs(difference) <= spread:
        return summary, "not distinguishable from seed noise"
    observed = "better" if difference > 0 else "worse"
    return summary, "confirmed" if observed == expected else "refuted"


def ablation_deltas(metrics: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each ablation against the first experiment of the group (the full model) on the same
    seeds: change in validation and test Acc@1, and whether the test change exceeds the larger
    of the two standard deviations over seeds."""
    rows = []
    for name in names[1:]:
        ablated, full = on_shared_seeds(metrics, name, names[0])
        runs, reference = ablated["test_acc1"], full["test_acc1"]
        if len(runs) < 2:
            continue
        difference, spread = difference_and_spread(runs, reference)
        val_difference = 100 * (ablated["val_acc1"].mean() - full["val_acc1"].mean())
        rows.append({"ablation": f"`{name}`", "seeds": len(runs),
                     "test Acc@1 %": mean_std(runs),
                     f"val change vs `{names[0]}`, points": f"{val_difference:+.2f}",
                     f"test change vs `{names[0]}`, points": f"{difference:+.2f}",
                     "beyond the seed spread?": "yes" if abs(difference) > spread else
                     f"no (spread {spread:.2f})"})
    return pd.DataFrame(rows)


def targets_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """The issue's targets (``targets:`` in experiments.yaml) against the measured means."""
    rows = []
    for target in load_registry().get("targets", []):
        runs = metrics.loc[metrics["experiment"] == target["experiment"], target["metric"]]
        if runs.empty:
            continue
        rows.append({"experiment": f"`{target['experiment']}`", "seeds": len(runs),
                     "metric": target["metric"], "mean ± std %": mean_std(runs),
                     "target %": f">= {100 * target['at_least']:.0f}",
                     "met": "yes" if runs.mean() >= target["at_least"] else "no"})
    return pd.DataFrame(rows)


def claims_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """A verdict for each seed-report claim of ``experiments.yaml`` whose runs exist, on the seeds
    both experiments have (as the ablation tables do)."""
    rows = []
    for claim in load_registry().get("claims", []):
        runs, reference = on_shared_seeds(metrics, claim["experiment"], claim["versus"])
        if len(runs) < 2:
            continue
        difference, outcome = verdict(runs["test_acc1"], reference["test_acc1"],
                                      claim["expected"])
        rows.append({"seed report claim": claim["claim"], "seeds": len(runs),
                     "test": f"`{claim['experiment']}` {claim['expected']} than "
                             f"`{claim['versus']}`",
                     "Acc@1 difference, points": difference, "verdict": outcome})
    return pd.DataFrame(rows)


def published_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Quoted published figures beside the seed report and our headline experiments."""
    registry = load_registry()
    rows = [{"method": item["method"], "test Acc@1 %": item["acc1"],
             "source": f"{{cite}}`{item['source']}`" if item["source"] else "project brief"}
            for item in registry.get("published", [])]
    rows.append({"method": "seed report, best single run (baseline)",
                 "test Acc@1 %": f"{100 * registry['experiments']['baseline']['prior_report_acc1']:.2f}",
                 "source": "seed report"})
    for name in registry.get("tables", {}).get("headline", []):
        runs = metrics.loc[metrics["experiment"] == name, "test_acc1"]
        if not runs.empty:
            rows.append({"method": f"`{name}` ({len(runs)} runs)",
                         "test Acc@1 %": mean_std(runs), "source": "this report"})
    return pd.DataFrame(rows)


def superseded_table() -> pd.DataFrame:
    """Runs archived by ``nextloc archive`` when a later validation step changed the config."""
    rows = []
    for folder in sorted((RESULTS_DIR / "superseded").glob("*")):
        runs = pd.read_csv(folder / "metrics.csv")
        rows.append({"archived as": folder.name, "experiment": runs["experiment"].iloc[0],
                     "seeds": len(runs), "parameters": f"{int(runs['n_params'].iloc[0]):,}",
                     "val Acc@1 %": mean_std(runs["val_acc1"]),
                     "test Acc@1 %": mean_std(runs["test_acc1"]),
                     "test Acc@5 %": mean_std(runs["test_acc5"]),
                     "best epoch": f"{runs['best_epoch'].median():.0f}"})
    return pd.DataFrame(rows)


def pending_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Registry experiments with fewer finished runs than listed seeds."""
    rows = []
    for name, spec in load_registry()["experiments"].items():
        done = int((metrics["experiment"] == name).sum())
        if done < len(spec["seeds"]):
            rows.append({"experiment": f"`{name}`", "finished runs": done,
                         "seeds listed": len(spec["seeds"])})
    return pd.DataFrame(rows)


def write_tables() -> list[Path]:
    """All generated tables: every experiment, then one table per chapter group."""
    metrics = read_metrics()
    order = list(load_registry()["experiments"])
    metrics = metrics.assign(order=metrics["experiment"].map(
        {n: i for i, n in enumerate(order)})).sort_values(["order", "seed"])
    summary = summarize(metrics)
    note = ("Test metrics in %, mean ± sample standard deviation over the seeds; `val Acc@1` is "
            "the validation accuracy of the chosen epoch (– for refits, which train on "
            "validation). Generated from `results/metrics.csv`.\n")
    paths = [write("results_all", markdown_table(summary) + "\n" + note)]
    for group, names in load_registry().get("tables", {}).items():
        part = summary[summary["experiment"].isin(names)]
        paths.append(write(f"results_{group}", markdown_table(part) + "\n" + note))
        if group.endswith("_ablation"):
            deltas = ablation_deltas(metrics, names)
            paths.append(write(f"deltas_{group}",
                               markdown_table(deltas, empty="No ablation runs yet.\n")))
    for name, table in {"claims": claims_table(metrics), "published": published_table(metrics),
                        "baseline_notes": prior_report_seed_table(metrics),
                        "targets": targets_table(metrics),
                        "superseded": superseded_table()}.items():
        paths.append(write(name, markdown_table(table, empty="No runs yet.\n")))
    pending = pending_table(metrics)
    paths.append(write("pending", markdown_table(
        pending, empty="Every experiment of `experiments.yaml` has all its runs.\n")))
    comparison = seed_comparison(metrics)
    if not comparison.empty:
        paths.append(write("seed_comparison", markdown_table(comparison)))
    paths.append(write_toc())
    for search_file in sorted((RESULTS_DIR / "search").glob("*.csv")):
        trials = pd.read_csv(search_file).sort_values("val_acc1", ascending=False)
        trials = trials.drop(columns=["trial"]).round(4)
        paths.append(write(f"search_{search_file.stem}", markdown_table(trials)))
    return paths
