"""The book's tables, generated from ``results/metrics.csv`` and the search results.

Each table is a MyST markdown file under ``book/generated/`` that a chapter includes; nothing in
them is typed by hand.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nextloc.data import PROJECT_ROOT
from nextloc.experiments import RESULTS_DIR, load_registry, read_metrics

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
        seed_figure = registry.get(name, {}).get("seed_report_acc1")
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


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write(name: str, text: str) -> Path:
    GENERATED.mkdir(parents=True, exist_ok=True)
    path = GENERATED / f"{name}.md"
    path.write_text(text)
    return path


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
    search_file = RESULTS_DIR / "search" / "pointer.csv"
    if search_file.is_file():
        trials = pd.read_csv(search_file).sort_values("val_acc1", ascending=False)
        trials = trials.drop(columns=["trial"]).round(4)
        paths.append(write("search_pointer", markdown_table(trials)))
    return paths
