"""Where the headline's points come from: its gain in test Acc@1 over the prior report's
baseline, split over groups of test targets (the unseen-location class or a known place; the
target in the history window or not), with the ``markov`` counting rule for reference.

A group's contribution is its share of the test targets times the difference in accuracy within
it. The shares are the same for every run (one test split), so within one split the
contributions add up exactly to the difference of the mean Acc@1 over seeds::

    mean_s acc(s) = mean_s sum_g share_g acc_g(s) = sum_g share_g mean_s acc_g(s)

Writes ``book/generated/points_source.md`` and ``fig_points_source.svg``; without the data or
the runs, a sentence says why and the figure says so (as
:func:`nextloc.report.appendix.gap_table`)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nextloc.report.analysis import per_sample_frame
from nextloc.data.split import load_dataset
from nextloc.core.errors import DataError
from nextloc.core import paths
from nextloc.report.plotting import placeholder, save
from nextloc.report.tables import markdown_table, write

VERSUS, REFERENCE = "baseline", "markov"
ALL = "all test targets"
COLORS = ["#2a9d8f", "#8d99ae"]  # the headline, the reference
TITLES = {"target's class": "(a) the unseen class or a known place",
          "history": "(b) the target in the history or not"}


def groups(samples: pd.DataFrame, days: int) -> dict[str, pd.Series]:
    """Each split of the test targets: a label per sample (the group named first first)."""
    splits = {"target's class": ("unseen", "unseen place", "known place"),
              "history": ("in_history", f"in the {days}-day history",
                          f"not in the {days}-day history")}
    return {split: samples[column].map({True: yes, False: no}).rename(None).astype(
                pd.CategoricalDtype([yes, no])) for split, (column, yes, no) in splits.items()}


def contributions(samples: pd.DataFrame, group: pd.Series, experiment: str,
                  versus: str = VERSUS) -> pd.DataFrame:
    """Per group of ``group`` (a label per row of ``samples``, a categorical's order kept): its
    share of the test targets, Acc@1 of ``experiment`` and ``versus`` (means over their seeds,
    fractions), and the contribution to the gain, in points; a last row ``ALL`` with the totals.
    The contributions add up to the total gain."""
    samples = samples.assign(group=group.astype(str))
    first = samples[samples["run"] == samples["run"].iloc[0]]
    order = group.cat.categories if isinstance(group.dtype, pd.CategoricalDtype) else group.unique()
    share = first["group"].value_counts(normalize=True).reindex(map(str, order)).dropna()
    per_seed = samples.groupby(["experiment", "group", "seed"])["correct"].mean()
    accuracy = per_seed.groupby(["experiment", "group"]).mean().unstack(0)
    table = pd.DataFrame({"share": share, experiment: accuracy[experiment].reindex(share.index),
                          versus: accuracy[versus].reindex(share.index)})
    table["points"] = 100 * table["share"] * (table[experiment] - table[versus])
    overall = samples.groupby(["experiment", "seed"])["correct"].mean().groupby(level=0).mean()
    table.loc[ALL] = [1.0, overall[experiment], overall[versus],
                      100 * (overall[experiment] - overall[versus])]
    return table


def points_frame(samples: pd.DataFrame, headline: str, days: int) -> pd.DataFrame:
    """One row per (split, group) and the totals: share, each experiment's Acc@1 and the
    contributions of the headline and of the reference, in points."""
    parts = []
    for split, group in groups(samples, days).items():
        mine = contributions(samples, group, headline)
        reference = contributions(samples, group, REFERENCE)
        parts.append(mine.assign(**{REFERENCE: reference[REFERENCE],
                                    f"{REFERENCE} points": reference["points"], "split": split}))
    frame = pd.concat(parts).rename_axis("group").reset_index()
    total = frame[frame["group"] == ALL].iloc[:1].assign(split="all")
    return pd.concat([frame[frame["group"] != ALL], total], ignore_index=True)


def points_table(frame: pd.DataFrame, headline: str, seeds: dict[str, int]) -> str:
    def percent(column):
        return [f"{100 * v:.2f}" for v in frame[column]]

    table = pd.DataFrame({
        "test targets": frame["group"], "share %": percent("share"),
        f"`{VERSUS}` Acc@1 %": percent(VERSUS), f"`{REFERENCE}` Acc@1 %": percent(REFERENCE),
        f"`{headline}` Acc@1 %": percent(headline),
        f"`{REFERENCE}` gain, points": [f"{v:+.2f}" for v in frame[f"{REFERENCE} points"]],
        f"`{headline}` gain, points": [f"{v:+.2f}" for v in frame["points"]]})
    runs = ", ".join(f"`{name}` {n} seed{'s' * (n > 1)}" for name, n in seeds.items())
    return (markdown_table(table) + f"\nGain: the difference in test Acc@1 against `{VERSUS}`. "
            f"A group's row gives its contribution: its share of the test targets times the "
            f"difference in accuracy within it, so the two rows of each split add up to the "
            f"gain on {ALL}. Accuracies are means over the runs ({runs}).\n")


def points_figure(frame: pd.DataFrame | None, headline: str, note: str = "") -> Path:
    """Two panels, one per split: the contribution of each group and the total, in points, for
    the headline and the reference (horizontal bars, values printed at their ends)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
    if frame is None:
        for ax in axes:
            placeholder(ax, note)
        return save(fig, "fig_points_source")
    labels = [f"{headline} (the headline)", f"{REFERENCE} (counting rule)"]
    for ax, (split, part) in zip(axes, frame.groupby("split", sort=False)):
        part = pd.concat([part[part["group"] != ALL], frame[frame["group"] == ALL]])
        y = np.arange(len(part))
        for offset, column, label, color in zip((-0.2, 0.2), ("points", f"{REFERENCE} points"),
                                                labels, COLORS):
            bars = ax.barh(y + offset, part[column], height=0.38, color=color, label=label)
            ax.bar_label(bars, fmt="%+.1f", padding=3, fontsize=8)
        ax.set_yticks(y, [f"{g}\n({100 * s:.1f} % of targets)" if g != ALL else g
                          for g, s in zip(part["group"], part["share"])], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="0.2", linewidth=1)
        ax.axhline(len(part) - 1.5, color="0.6", linewidth=0.8, linestyle="--")
        ax.set_title(TITLES[split])
        ax.set_xlabel(f"points of test Acc@1 over {VERSUS}")
    low, high = axes[0].get_xlim()
    axes[0].set_xlim(low - 0.12 * (high - low), high + 0.12 * (high - low))  # room for values
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return save(fig, "fig_points_source")


def test_data():
    """The test split and the days of history, or None when the data is not available."""
    try:
        data = load_dataset()
    except (DataError, FileNotFoundError):
        return None
    return data.splits["test"], data.previous_day


def saved_seeds(name: str) -> int:
    return sum((run / "test_predictions.csv.gz").is_file()
               for run in (paths.RESULTS_DIR / "runs" / name).glob("seed_*"))


def write_points_source(registry: dict) -> list[Path]:
    """The table and the figure, or a sentence (and a figure saying so) where the data, the
    headline or the saved runs are missing."""
    headline = (registry.get("headline") or {}).get("train_only")
    names = [VERSUS, REFERENCE, headline]
    seeds = {name: saved_seeds(name) for name in names if name}
    data = test_data()
    if headline is None:
        note = "the registry names no headline experiment"
    elif data is None:
        note = "the data is not available here"
    elif not all(seeds.values()):
        note = f"the saved runs of {', '.join(f'`{n}`' for n, k in seeds.items() if not k)} " \
               f"are missing"
    else:
        split, days = data
        frame = points_frame(per_sample_frame(split, names), headline, days)
        return [write("points_source", points_table(frame, headline, seeds)),
                points_figure(frame, headline),
                write("why_it_works", why_text(frame, headline, registry))]
    return [write("points_source", f"The gain is not split here: {note}.\n"),
            points_figure(None, headline, note.replace("`", "")),
            write("why_it_works", f"The test targets are not broken down here: {note}.\n")]


def why_text(frame: pd.DataFrame, headline: str, registry: dict) -> str:
    """Why copying works, in two sentences from the split of the test targets."""
    row = frame.set_index("group")
    history = row.loc[row.index.str.startswith("in the ")].iloc[0]["share"]
    unseen = row.loc["unseen place", "share"]
    prior = registry["experiments"].get(VERSUS, {}).get("prior_report_acc1")
    ceiling = f", above the prior report's {100 * prior:.2f} % \"ceiling\"" if prior else ""
    return (f"{100 * history:.2f} % of the test targets are a place of the person's recent "
            f"history, and {100 * unseen:.2f} % are the unseen-location class (a place never "
            f"visited in the training period), which the prior report's baseline never "
            f"predicts. The counting rule `{REFERENCE}`, which has no parameters, already "
            f"reaches {100 * row.loc[ALL, REFERENCE]:.2f} %{ceiling}; the headline "
            f"`{headline}` copies from the history or generates any place, and reaches "
            f"{100 * row.loc[ALL, headline]:.2f} %.\n")
