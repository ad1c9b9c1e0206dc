"""The road to the headline (``road:`` in the registry): one row per search step, what it
changed, its validation gain on the seeds the search saw and on seeds it never saw, its test
change with a paired interval (always new minus old), and its compute; how the test set was
used while the search ran; and the training compute behind one headline run.

A step entry::

    - {step: "11", change: "...", searches: [pointer_pair_redistill],
       experiment: pointer_pair_redistilled, before: pointer_pair_averaged,
       confirmation: [confirmation_pair_redistilled, confirmation_pair_averaged]}

``confirmation`` names the pair of confirmation experiments (seeds never used before) that
repeat the step, where the confirmation chain does.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nextloc.core import paths
from nextloc.report.plotting import placeholder, save
from nextloc.experiments.results import read_search_table
from nextloc.report.stats import compare, t_interval


def search_seeds(registry: dict) -> set[int]:
    """Every seed a search trial trained with."""
    seeds = set()
    for spec in (registry.get("searches") or {}).values():
        seeds |= set(spec.get("seeds", [spec.get("seed", 42)]))
    return seeds


def val_gain(metrics: pd.DataFrame, new: str, old: str, seeds) -> tuple[float, int] | None:
    """Mean validation Acc@1 of ``new`` minus ``old`` on the given seeds both have, in points."""
    runs = metrics[metrics["seed"].isin(seeds)]
    a = runs[runs["experiment"] == new].set_index("seed")["val_acc1"]
    b = runs[runs["experiment"] == old].set_index("seed")["val_acc1"]
    shared = a.index.intersection(b.index)
    if len(shared) == 0:
        return None
    return float(100 * (a[shared] - b[shared]).mean()), len(shared)


def search_core_hours(names: list[str]) -> float:
    """Training time of every trial of these searches (seeds × mean seconds), in core-hours."""
    total = 0.0
    for name in names:
        path = paths.RESULTS_DIR / "search" / f"{name}.csv"
        if path.is_file():
            trials = read_search_table(path)
            seeds = trials["seeds"].fillna(1) if "seeds" in trials else 1
            total += float((seeds * trials["train_seconds"].fillna(0)).sum())
    return total / 3600


def gain_text(gain) -> str:
    return "–" if gain is None else f"{gain[0]:+.2f} ({gain[1]} seeds)"


def road_rows(metrics: pd.DataFrame, registry: dict) -> list[dict]:
    searched = search_seeds(registry)
    rows = []
    for step in registry.get("road") or []:
        row = {"step": step["step"], "change": step["change"],
               "experiment": step.get("experiment"), "searched": None, "fresh": None,
               "confirmation": None, "test": None,
               "core_hours": search_core_hours(step.get("searches", []))}
        new, old = step.get("experiment"), step.get("before")
        if new and old:
            row["searched"] = val_gain(metrics, new, old, searched)
            fresh = set(metrics.loc[metrics["experiment"] == new, "seed"]) - searched
            row["fresh"] = val_gain(metrics, new, old, fresh)
            row["test"] = compare(metrics, new, old)
        if step.get("confirmation"):
            first, second = step["confirmation"]
            row["confirmation"] = val_gain(metrics, first, second,
                                           set(metrics.loc[metrics["experiment"] == first,
                                                           "seed"]))
        rows.append(row)
    return rows


def road_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "step": r["step"], "change": r["change"],
        "val gain, search seeds": gain_text(r["searched"]),
        "val gain, other seeds": gain_text(r["fresh"]),
        "val gain, confirmation seeds": gain_text(r["confirmation"]),
        "test change, new − old [95 % CI]": "–" if r["test"] is None else
        f"{r['test'].text()} ({r['test'].n} seeds)",
        "search compute, core-hours": f"{r['core_hours']:.1f}"} for r in rows])


def selection_optimism(rows: list[dict], first_step: int = 6) -> tuple[float, float, int] | None:
    """Summed over the steps from ``first_step`` on: validation gain on the search seeds, and on
    seeds the search never saw (the confirmation seeds where a step has them, else the other
    seeds of its experiments), and the number of steps counted."""
    searched, fresh, counted = 0.0, 0.0, 0
    for row in rows:
        start = int(str(row["step"]).split("-")[0])
        unseen = row["confirmation"] or row["fresh"]
        if start < first_step or row["searched"] is None or unseen is None:
            continue
        searched += row["searched"][0]
        fresh += unseen[0]
        counted += 1
    return (searched, fresh, counted) if counted else None


def road_figure(metrics: pd.DataFrame, rows: list[dict], name: str = "fig_road_to_headline"
                ) -> Path:
    """Each step's experiment: test Acc@1 (mean and 95 % interval over seeds) and validation
    Acc@1 (mean), step by step, from the prior report's baseline to the headline."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    steps = [("baseline", "prior baseline")] + [(r["experiment"], f"step {r['step']}")
                                                for r in rows if r["experiment"]]
    points = []
    for experiment, label in steps:
        runs = metrics[metrics["experiment"] == experiment]
        if len(runs) < 2:
            continue
        mean, low, high = t_interval(100 * runs["test_acc1"])
        points.append((label, mean, low, high, 100 * runs["val_acc1"].mean()))
    if not points:
        placeholder(ax, "runs pending")
        return save(fig, name)
    x = np.arange(len(points))
    test = np.array([p[1] for p in points])
    ax.errorbar(x, test, yerr=[test - [p[2] for p in points], [p[3] for p in points] - test],
                fmt="o-", color="#264653", capsize=3, label="test Acc@1 (95 % CI over seeds)")
    ax.plot(x, [p[4] for p in points], "s--", color="#e76f51", markersize=4,
            label="validation Acc@1 (mean)")
    ax.set_xticks(x, [p[0] for p in points], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Acc@1 %")
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, name)


def missed_targets(metrics: pd.DataFrame, registry: dict, experiment: str) -> list[str]:
    """The test targets (``targets:``) that ``experiment``'s mean, or its refit twin's, missed."""
    missed = []
    labels = {"test_acc1": "Acc@1", "test_acc5": "Acc@5", "test_mrr": "MRR"}
    for target in registry.get("targets") or []:
        name = target["experiment"]
        runs = metrics.loc[metrics["experiment"] == name, target["metric"]]
        if name in (experiment, f"{experiment}_refit") and not runs.empty \
                and runs.mean() < target["at_least"]:
            protocol = "B" if name.endswith("_refit") else "A"
            missed.append(f"{labels.get(target['metric'], target['metric'])} ≥ "
                          f"{100 * target['at_least']:g} % ({protocol})")
    return missed


def test_use_table(metrics: pd.DataFrame, registry: dict) -> pd.DataFrame:
    """Per step: the test targets its predecessor had missed when the step was added."""
    rows = []
    for step in registry.get("road") or []:
        before = step.get("before")
        missed = missed_targets(metrics, registry, before) if before else []
        rows.append({"step": step["step"], "starts from": f"`{before}`" if before else "–",
                     "targets on test the starting point missed": ", ".join(missed) or "none"})
    return pd.DataFrame(rows)


def optimism_text(rows: list[dict]) -> str:
    found = selection_optimism(rows)
    if found is None:
        return "The runs that measure the selection optimism have not finished yet.\n"
    searched, fresh, counted = found
    return (f"Summed over the {counted} search steps from step 6 on, the chosen configurations "
            f"gained {searched:+.2f} points of validation Acc@1 on the seeds the search saw "
            f"and {fresh:+.2f} points on seeds it never saw (the confirmation seeds where the "
            f"step has them, else the experiments' other seeds). The difference, "
            f"{searched - fresh:+.2f} points, estimates the selection optimism: the part of the "
            f"search-seed gain that came from choosing among noisy candidates.\n")


def write_road(metrics: pd.DataFrame, registry: dict) -> list[Path]:
    """The road table and figure, the test-use table, the selection optimism and the headline's
    compute, into book/generated/."""
    from nextloc.report.headline import compute_text
    from nextloc.report.tables import markdown_table, write

    rows = road_rows(metrics, registry)
    return [write("road_to_headline", markdown_table(road_table(rows),
                                                      empty="No search steps listed.\n")),
            write("test_use", markdown_table(test_use_table(metrics, registry),
                                             empty="No search steps listed.\n")),
            write("selection_optimism", optimism_text(rows)),
            write("headline_compute", (compute_text(metrics, registry) or "No headline.")
                  + "\n"),
            road_figure(metrics, rows),
            write("baseline_epochs", kept_epochs_text(metrics, "baseline"))]


def kept_epochs_text(metrics: pd.DataFrame, experiment: str) -> str:
    runs = metrics[metrics["experiment"] == experiment].sort_values("seed")
    if runs.empty:
        return f"`{experiment}` has no runs yet.\n"
    kept = ", ".join(f"seed {int(s)}: epoch {int(e)}" for s, e in zip(runs["seed"],
                                                                     runs["best_epoch"]))
    return f"Epochs kept by early stopping (`{experiment}`): {kept}.\n"
