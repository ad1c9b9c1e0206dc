"""Figures read from the saved runs' files (histories, per-sample predictions) and from the
sweeps of ``experiments/*.yaml``: learning curves, per-user accuracy, the recipe sweeps, capacity
and data curves, and the validation-test gap. See :mod:`nextloc.report.figures` for the
conventions."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from nextloc.report.analysis import learning_curves, per_sample_frame, predicts_unseen
from nextloc.data.split import load_dataset
from nextloc.core.errors import DataError
from nextloc.report.plotting import BUDGET, placeholder, save, thousands


def curves(metrics: pd.DataFrame, name: str, refit: str) -> Path:
    """Validation Acc@1 and training loss per epoch of every seed of the headline model, the
    epoch early stopping kept marked, and the refit's training loss beside it."""
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    try:
        history = learning_curves([name])
    except FileNotFoundError:
        placeholder(acc_ax, f"no saved runs of {name}")
        return save(fig, "fig_learning_curves")
    sns.lineplot(history, x="epoch", y="val_acc1", units="seed", estimator=None, ax=acc_ax,
                 color="#457b9d", alpha=0.7, linewidth=1)
    chosen = metrics[metrics["experiment"] == name].set_index("seed")["best_epoch"]
    for seed, run in history.groupby("seed"):
        best = run[run["epoch"] == chosen.get(seed, -1)]
        acc_ax.scatter(best["epoch"], best["val_acc1"], color="#e76f51", zorder=3, s=25)
    acc_ax.set(ylabel="validation Acc@1", title=f"{name}: red dot = epoch kept")
    try:
        both = learning_curves([name, refit])
    except FileNotFoundError:
        both = history
    sns.lineplot(both, x="epoch", y="train_loss", hue="experiment", units="seed",
                 estimator=None, ax=loss_ax, linewidth=1, alpha=0.7)
    loss_ax.set(ylabel="training loss", title="training loss, protocol A and B")
    loss_ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return save(fig, "fig_learning_curves")


def per_user(metrics: pd.DataFrame, names: list[str]) -> Path:
    """Test Acc@1 per user (mean over seeds) against the user's number of test samples."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    try:
        samples = per_sample_frame(load_dataset().splits["test"], list(names))
    except (FileNotFoundError, DataError):
        placeholder(ax, "saved predictions or data not available")
        return save(fig, "fig_per_user")
    per_seed = samples.groupby(["experiment", "user", "seed"])["correct"].mean()
    users = per_seed.groupby(["experiment", "user"]).mean().rename("Acc@1 %").reset_index()
    size = samples[samples["run"] == samples["run"].iloc[0]].groupby("user").size()
    users["test samples"] = users["user"].map(size)
    users["Acc@1 %"] *= 100
    sns.scatterplot(users, x="test samples", y="Acc@1 %", hue="experiment", ax=ax, s=30,
                    alpha=0.8)
    ax.set_xscale("log")
    ax.set(xlabel="test samples of the user (log scale)", ylabel="test Acc@1 % of the user")
    return save(fig, "fig_per_user")


def finished(metrics: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """The runs of experiments that have all the seeds the registry lists (partial experiments
    are drawn as pending, like the claims that use them)."""
    counts = metrics["experiment"].value_counts()
    done = [name for name, count in counts.items()
            if count >= len(experiments.get(name, {}).get("seeds", []))]
    return metrics[metrics["experiment"].isin(done)]


def sweep_frame(metrics: pd.DataFrame, points: dict) -> pd.DataFrame:
    runs = metrics[metrics["experiment"].isin(points)].copy()
    runs["x"] = runs["experiment"].map(points)
    runs["model"] = np.where(runs["experiment"].str.startswith("pointer"), "pointer", "baseline")
    runs["Acc@1 %"] = 100 * runs["test_acc1"]
    return runs


def sweeps(metrics: pd.DataFrame, registry: dict) -> list[Path]:
    """One panel per sweep of the registry: each seed a dot, the mean a line."""
    paths = []
    metrics = finished(metrics, registry["experiments"])
    for name, sweep in registry.get("sweeps", {}).items():
        fig, ax = plt.subplots(figsize=(6, 3.4))
        runs = sweep_frame(metrics, sweep["points"])
        done = runs.groupby("x").size()
        if len(done) < 2:
            placeholder(ax, f"{sweep['label']} sweep: runs pending")
        else:
            sns.lineplot(runs, x="x", y="Acc@1 %", hue="model", estimator="mean",
                         errorbar=None, marker="o", ax=ax)
            sns.scatterplot(runs, x="x", y="Acc@1 %", hue="model", legend=False, alpha=0.5,
                            s=18, ax=ax)
            if sweep.get("log"):
                ax.set_xscale("log", base=2)
            if all(isinstance(x, int) for x in sweep["points"].values()):
                ax.set_xticks(sorted(set(sweep["points"].values())))  # counts: no 2.5 ticks
            missing = sorted(set(sweep["points"]) - set(runs["experiment"]))
            note = f"pending: {', '.join(missing)}" if missing else ""
            ax.set(xlabel=sweep["label"], ylabel="test Acc@1 %", title=note)
        paths.append(save(fig, f"fig_sweep_{name}"))
    return paths


def capacity(metrics: pd.DataFrame, experiments: dict) -> Path:
    """The baseline and the pointer at their budget size and scaled to ~750K and ~1M."""
    families = {"baseline": ["baseline", "baseline_750k_over_budget", "baseline_1m_over_budget"],
                "pointer": ["pointer", "pointer_750k_over_budget", "pointer_1m_over_budget"]}
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    metrics = finished(metrics, experiments)
    parts = [metrics[metrics["experiment"].isin(names)].assign(model=model)
             for model, names in families.items()]
    runs = pd.concat(parts)
    if runs["experiment"].nunique() <= 2:
        placeholder(ax, "capacity runs pending")
        return save(fig, "fig_capacity")
    runs = runs.assign(**{"Acc@1 %": 100 * runs["test_acc1"]})
    sns.lineplot(runs, x="n_params", y="Acc@1 %", hue="model", marker="o", errorbar=None, ax=ax)
    sns.scatterplot(runs, x="n_params", y="Acc@1 %", hue="model", legend=False, alpha=0.5, s=18,
                    ax=ax)
    ax.axvline(BUDGET, color="0.2", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    thousands(ax)
    ax.set(xlabel="parameters (log scale; dashed: the 500K budget)", ylabel="test Acc@1 %")
    return save(fig, "fig_capacity")


def gap_figure(metrics: pd.DataFrame) -> Path:
    """Validation against test Acc@1 of every early-stopped experiment (one dot per experiment,
    the diagonal where they agree)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    means = (metrics.dropna(subset=["val_acc1"]).groupby("experiment")[["val_acc1", "test_acc1"]]
             .mean() * 100)
    if means.empty:
        placeholder(ax, "no runs yet")
        return save(fig, "fig_val_test")
    low, high = means.min().min() - 2, means.max().max() + 2
    hue = "ranks the unseen class first"
    means[hue] = ["sometimes" if predicts_unseen(n) else "never" for n in means.index]
    sns.scatterplot(means, x="val_acc1", y="test_acc1", hue=hue, ax=ax, s=30,
                    hue_order=["never", "sometimes"])
    ax.plot([low, high], [low, high], color="0.4", linewidth=1, linestyle="--")
    for name in ["baseline", "ultra_advanced", "pointer", "memory_graph", "markov"]:
        if name in means.index:
            ax.annotate(name, means.loc[name, ["val_acc1", "test_acc1"]], fontsize=8,
                        xytext=(4, -10), textcoords="offset points")
    ax.set(xlabel="validation Acc@1 % (mean over seeds)", ylabel="test Acc@1 %")
    return save(fig, "fig_val_test")


def write_run_figures(metrics: pd.DataFrame, registry: dict) -> list[Path]:
    headline = registry.get("headline") or {"train_only": "", "refit": ""}
    return [curves(metrics, headline["train_only"], headline["refit"]),
            per_user(metrics, [headline["train_only"], "baseline"]),
            capacity(metrics, registry["experiments"]),
            gap_figure(metrics),
            *sweeps(metrics, registry)]
