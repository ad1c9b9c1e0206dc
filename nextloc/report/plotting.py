"""Shared settings and helpers of the book's figures (seaborn, SVG into ``book/generated/``).

Every figure is deterministic: a fixed SVG hash salt, no date in the metadata, text kept as
text, and a fixed random state for any jitter, so that regenerating changes no file unless a
number changed. A figure whose runs have not finished draws a note saying so, because the
chapters include every figure unconditionally.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
import seaborn as sns  # noqa: E402

from nextloc.core import paths  # noqa: E402
from nextloc.core.paths import atomic_write  # noqa: E402

BUDGET = 500_000
VERDICT_COLORS = {"supported": "#2a9d8f", "refuted": "#e76f51", "refuted in size": "#f4a261",
                  "equivalent": "#264653", "inconclusive": "#8d99ae"}
PRIOR_STYLE = dict(marker="X", s=70, color="#d62828", zorder=5, label="prior report (one run)")


def setup() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    plt.rcParams.update({"svg.hashsalt": "nextloc", "svg.fonttype": "none",
                         "figure.dpi": 100, "axes.titlesize": "medium"})


def save(fig, name: str) -> Path:
    try:
        return atomic_write(paths.GENERATED / f"{name}.svg", lambda tmp: fig.savefig(
            tmp, format="svg", bbox_inches="tight", metadata={"Date": None}))
    finally:
        plt.close(fig)


def placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def thousands(ax) -> None:
    """Parameter counts on a log x axis as 200K, 500K, 1M."""
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 3, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}K"))
    ax.xaxis.set_minor_formatter(NullFormatter())
