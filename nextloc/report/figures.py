"""The book's summary figures: accuracy against parameters, per-seed strips with the prior
report's figures, and forest plots of the claims' comparisons (conventions in
:mod:`nextloc.report.plotting`)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from nextloc.report.claims import ClaimResult
from nextloc.report.plotting import (BUDGET, PRIOR_STYLE, VERDICT_COLORS, placeholder, save,
                                     thousands)
from nextloc.report.stats import t_interval


def family(name: str, spec: dict) -> str:
    if name.endswith("_over_budget"):
        return "over the budget"
    if spec.get("model") in {"pointer", "pointer_ensemble"}:
        return "pointer models"
    if spec.get("model") == "baseline" and name != "baseline":
        return "baseline variants"
    return "prior report's models"


def params_accuracy(metrics: pd.DataFrame, experiments: dict, headline: list[str]) -> Path:
    """Test Acc@1 of every run against its parameter count (log scale), the budget line, and the
    rules that learn no weights as horizontal lines."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    trained = metrics[metrics["n_params"] > 0].copy()
    trained["family"] = [family(n, experiments.get(n, {})) for n in trained["experiment"]]
    trained["protocol"] = ["B: refit on train + val" if experiments.get(n, {}).get("refit")
                           else "A: train only" for n in trained["experiment"]]
    trained["Acc@1 %"] = 100 * trained["test_acc1"]
    sns.scatterplot(trained, x="n_params", y="Acc@1 %", hue="family", style="protocol",
                    alpha=0.7, s=36, ax=ax)
    ax.set_xscale("log")
    thousands(ax)
    ax.axvline(BUDGET, color="0.2", linestyle="--", linewidth=1)
    # At the bottom of the axis, where no run sits (every model there is far below the budget).
    ax.text(BUDGET * 1.03, ax.get_ylim()[0] + 0.5, "500K budget", rotation=90, va="bottom",
            ha="left", fontsize=8, color="0.3")
    for name, runs in metrics[metrics["n_params"] == 0].groupby("experiment", sort=False):
        if name in {"history_most_frequent", "markov"}:
            value = 100 * runs["test_acc1"].iloc[0]
            ax.axhline(value, color="0.5", linewidth=0.8, linestyle=":")
            ax.text(ax.get_xlim()[0] * 1.05, value + 0.4, f"{name} (no parameters)", fontsize=8,
                    color="0.3")
    # No label for pointer_pair: the headline, a variant of it, sits at nearly the same point.
    for name in ["baseline", "pointer", "memory_graph", "ultra_advanced", *headline[:1]]:
        runs = trained[trained["experiment"] == name]
        if not runs.empty:
            ax.annotate(name, (runs["n_params"].iloc[0], runs["Acc@1 %"].mean()),
                        xytext=(6, -3), textcoords="offset points", fontsize=8)
    ax.set(xlabel="parameters (log scale)", ylabel="test Acc@1 %")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, "fig_params_accuracy")


def seed_strip(metrics: pd.DataFrame, names: list[str], experiments: dict, name: str,
               height: float | None = None) -> Path:
    """Test Acc@1 of each seed (dots), the mean with its 95 % t interval (bar), and the prior
    report's single figure where it ran the experiment (red cross)."""
    names = [n for n in names if (metrics["experiment"] == n).any()]
    fig, ax = plt.subplots(figsize=(7.5, height or 0.45 * len(names) + 1.2))
    if not names:
        placeholder(ax, "no runs yet")
        return save(fig, name)
    runs = metrics[metrics["experiment"].isin(names)].assign(
        acc=lambda f: 100 * f["test_acc1"])
    np.random.seed(0)
    sns.stripplot(runs, x="acc", y="experiment", order=names, color="#457b9d", size=5,
                  jitter=0.15, alpha=0.8, ax=ax)
    for row, experiment in enumerate(names):
        values = runs.loc[runs["experiment"] == experiment, "acc"]
        if len(values) > 1:
            mean, low, high = t_interval(values)
            ax.errorbar(mean, row, xerr=[[mean - low], [high - mean]], fmt="|", color="black",
                        markersize=14, capsize=4, zorder=4)
        prior = experiments.get(experiment, {}).get("prior_report_acc1")
        if prior is not None:
            ax.scatter(100 * prior, row, **{**PRIOR_STYLE, "label": PRIOR_STYLE["label"]
                                             if row == names.index(experiment) else None})
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(),
                  fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.set(xlabel="test Acc@1 % (dots: seeds; bar: mean and 95 % CI)", ylabel="")
    return save(fig, name)


def forest_rows(results: list[ClaimResult]) -> list[dict]:
    rows = []
    for result in results:
        pooled = [result.pooled] if len(result.arms) > 1 and result.pooled else []
        for arm in [*result.arms, *pooled]:
            if arm.comparison is None:
                continue
            claim = result.claim["claim"]
            claim = claim if len(claim) <= 62 else claim[:60] + "…"
            label = ("pooled over the arms" if arm in pooled
                     else arm.arm.label().replace("`", ""))
            rows.append({"label": f"{claim}\n{label}" if claim else label,
                         "comparison": arm.comparison, "verdict": arm.verdict,
                         "prior": arm.prior_difference})
    return rows


def forest(results: list[ClaimResult], name: str, title: str = "") -> Path:
    """One row per finished comparison: per-seed differences (dots), mean and 95 % t interval
    (bar, coloured by verdict), the prior report's own difference (red cross), and zero."""
    rows = forest_rows(results)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.3 if rows else 2.2))
    if not rows:
        placeholder(ax, "runs pending: no finished comparison yet")
        return save(fig, name)
    for y, row in enumerate(rows):
        comparison, color = row["comparison"], VERDICT_COLORS.get(row["verdict"], "black")
        ax.scatter(comparison.differences, [y] * comparison.n, s=14, color=color, alpha=0.6)
        ax.errorbar(comparison.mean, y, xerr=[[comparison.mean - comparison.low],
                                              [comparison.high - comparison.mean]],
                    fmt="o", color=color, capsize=3, markersize=5)
        if row["prior"] is not None:
            ax.scatter(row["prior"], y, **{**PRIOR_STYLE, "label": None, "s": 50})
    ax.axvline(0, color="0.2", linewidth=1)
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("difference in test Acc@1, points (dots: seeds; bar: 95 % CI)")
    present = dict.fromkeys(r["verdict"] for r in rows)
    handles = [plt.Line2D([], [], color=VERDICT_COLORS.get(v, "black"), marker="o",
                          linestyle="", label=v) for v in present]
    if any(r["prior"] is not None for r in rows):
        handles.append(plt.Line2D([], [], color=PRIOR_STYLE["color"], marker="X", linestyle="",
                                  label="prior report's difference"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title(title)
    return save(fig, name)


def write_figures(metrics: pd.DataFrame, registry: dict, book) -> list[Path]:
    experiments = registry["experiments"]
    groups = registry.get("tables", {})
    results = book.claims
    headline = [(registry.get("headline") or {}).get(k) for k in ("train_only", "refit")]
    headline = [name for name in headline if name]
    paths = [params_accuracy(metrics, experiments, headline),
             seed_strip(metrics, groups.get("headline", []), experiments, "fig_headline"),
             seed_strip(metrics, groups.get("references", []), experiments, "fig_references"),
             seed_strip(metrics, groups.get("seed_models", []), experiments, "fig_seed_models"),
             forest(results, "fig_claims")]
    for chapter in dict.fromkeys(r.claim.get("chapter") for r in results):
        paths.append(forest([r for r in results if r.claim.get("chapter") == chapter],
                            f"fig_claims_{chapter}"))
    for group, arms in book.ablations.items():
        ablation = [ClaimResult({"claim": ""}, [a]) for a in arms]
        paths.append(forest(ablation, f"fig_deltas_{group}"))
    return paths
