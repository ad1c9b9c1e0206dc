"""``nextloc tables``: every generated file of the book, from ``results/`` and the registry.

Tables (MyST markdown) and figures (SVG) go to ``book/generated/``, where the chapters include
them; ``_toc.yml`` is written from ``book/toc.yml`` and the registry's ``book:`` sections, and the
README's headline sentence is replaced between its markers. Nothing in these files is typed by hand.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from nextloc.core import paths
from nextloc.core.paths import all_or_nothing, atomic_write
from nextloc.experiments.project import Project
from nextloc.experiments.results import read_metrics, read_search_table
from nextloc.experiments.registry import same_dataset
from nextloc.report import road, tables
from nextloc.report.appendix import superseded_table, write_extra
from nextloc.report.figures import write_figures
from nextloc.report.figures_runs import write_run_figures
from nextloc.report.headline import headline_sentence
from nextloc.report.plotting import setup
from nextloc.report.points_source import write_points_source
from nextloc.report.tables import markdown_table, mean_std, write
from nextloc.report.toc import write_toc
from nextloc.report.verdicts import book_verdicts, margin_text, write_claims

EARLIER = "earlier step's choice"
# What an empty table says, in words a reader understands.
EMPTY = {"pending": "Every experiment has all its runs.\n",
         "targets": "No targets are set.\n", "published": "No published figures are listed.\n"}
README_MARKERS = ("<!-- headline: written by `nextloc tables` -->", "<!-- /headline -->")


def earlier_point(name: str) -> dict:
    """The full configuration a search step chose (the point the next step starts from)."""
    from nextloc.experiments.registry import best_point

    return best_point(name)


def earlier_trial(name: str) -> pd.Series:
    """The trials-table row of the point a search step chose (its scores)."""
    from nextloc.experiments.registry import chosen_trial

    return chosen_trial(name)


def search_table(name: str, registry: dict) -> pd.DataFrame:
    """One search step in the order its trials ran, with the point it selected marked; a step
    that starts from an earlier one lists that one's choice first, the point to beat."""
    spec = registry["searches"][name]
    trials = read_search_table(paths.RESULTS_DIR / "search" / f"{name}.csv")
    own = set(spec.get("space", {})) | {k for point in spec.get("points", []) for k in point}
    settings = [c for c in trials.columns if c in own]
    # The earlier step's choice is the point to beat only on the same dataset (scores of two
    # datasets do not compare); a search on another dataset lists that point as a trial, `{}`.
    if "base_search" in spec and same_dataset(spec, registry["searches"][spec["base_search"]]):
        best = earlier_trial(spec["base_search"]).to_frame().T.assign(trial=EARLIER)
        point = earlier_point(spec["base_search"])
        best = best.assign(**{c: [point.get(c, "not set")] for c in settings})
        trials = pd.concat([best, trials], ignore_index=True)
    chosen = trials["val_acc1"].idxmax()
    labels, number = [], 0
    for trial in trials["trial"]:
        number += trial != EARLIER
        labels.append(EARLIER if trial == EARLIER else str(number))
    table = pd.DataFrame({"trial": labels})
    for column in settings:
        table[column] = [format_setting(v, label == EARLIER or column in spec.get("space", {}))
                         for v, label in zip(trials[column], labels)]
    seeds = trials["seeds"].fillna(1).astype(int) if "seeds" in trials else [1] * len(trials)
    pruned = trials.get("state", pd.Series([""] * len(trials))).eq("PRUNED")
    # A pruned trial stopped during one of its seeds: "pruned (n)" with the n seeds it finished.
    table["seeds"] = [f"pruned ({n})" if cut else str(n) for n, cut in zip(seeds, pruned)]
    table["parameters"] = [dash_if_missing(v, lambda v: f"{int(v):,}") for v in trials["n_params"]]
    table["best epoch"] = [dash_if_missing(v, lambda v: f"{v:.1f}".removesuffix(".0"))
                           for v in trials["best_epoch"]]
    table["val Acc@1 %"] = [dash_if_missing(v, lambda v: f"{100 * v:.2f}")
                            for v in trials["val_acc1"]]
    table["val MRR %"] = [dash_if_missing(v, lambda v: f"{100 * v:.2f}")
                          for v in trials["val_mrr"]]
    table["selected"] = ["**selected**" if i == chosen else "" for i in range(len(trials))]
    return table


def dash_if_missing(value, formatted) -> str:
    return "–" if pd.isna(value) else formatted(value)


def format_setting(value, null_is_off: bool) -> str:
    """A search setting as printed: integers as integers, lists without quotes; a missing value
    is 'off' (a setting searched with null, such as no unseen-class masking) or, in a step that
    does not vary it, 'as before'."""
    if isinstance(value, float) and pd.isna(value):
        return "off" if null_is_off else "as before"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}"  # a value sampled from a range: 0.000978, not 0.0009781801964118503
    runs = checkpoint_runs(value)
    if runs:
        return "; ".join(f"{len(seeds)} run{'s' * (len(seeds) > 1)} of {name}"
                         for name, seeds in runs.items())
    return str(value).replace("'", "")


CHECKPOINT = r"\{checkpoints\}/([^/]+)/seed_(\d+)\.safetensors"


def checkpoint_runs(value) -> dict[str, list[str]]:
    """{experiment: [seed, ...]} when ``value`` is a list of run checkpoints (an ensemble's
    members, a teacher), or such a list as the trials table prints it; else {}. Five checkpoint
    paths make an unreadable table cell."""
    text = str(value)
    found = re.findall(CHECKPOINT, text)
    if not found or not re.fullmatch(r"[\[\]'\", ]*", re.sub(CHECKPOINT, "", text)):
        return {}
    runs: dict[str, list[str]] = {}
    for name, seed in found:
        runs.setdefault(name, []).append(seed)
    return runs


def run_overhead_seconds(metrics: pd.DataFrame) -> float:
    """Median seconds a run page took beyond its training (start-up, data, evaluation), from
    the papermill durations of the pages that trained (kept by a re-rendered page)."""
    extra = []
    for path in (paths.PROJECT_ROOT / "book" / "runs").glob("*/seed_*.ipynb"):
        metadata = json.loads(path.read_text()).get("metadata", {})
        papermill = metadata.get("nextloc", {}).get("training_run") or metadata.get("papermill", {})
        if papermill.get("parameters", {}).get("train") is False or not papermill.get("duration"):
            continue
        row = metrics[(metrics["experiment"] == path.parent.name)
                      & (metrics["seed"] == int(path.stem.removeprefix("seed_")))]
        if not row.empty:
            extra.append(papermill["duration"] - row["train_seconds"].iloc[0])
    return float(pd.Series(extra).median()) if extra else 0.0


def timing_table(metrics: pd.DataFrame, registry: dict) -> tuple[pd.DataFrame, float]:
    """What ``make report`` runs, in order, and its compute: the searches' and the runs'
    training seconds (``results/search``, ``results/metrics.csv``) plus a measured per-run
    overhead."""
    rows = []
    for name in registry.get("searches", {}):
        path = paths.RESULTS_DIR / "search" / f"{name}.csv"
        if path.is_file():
            trials = pd.read_csv(path)  # checked by write_report_sources before anything is written
            seeds = trials["seeds"].fillna(1) if "seeds" in trials else pd.Series(1, trials.index)
            rows.append({"step": f"`nextloc search {name}`", "runs": int(seeds.sum()),
                         "seconds": float((trials["train_seconds"] * seeds).sum())})
    overhead = run_overhead_seconds(metrics)
    for name in registry["experiments"]:
        runs = metrics[metrics["experiment"] == name]
        if not runs.empty:
            rows.append({"step": f"`nextloc run`: `{name}`", "runs": len(runs),
                         "seconds": float(runs["train_seconds"].sum() + overhead * len(runs))})
    table = pd.DataFrame(rows)
    return table, overhead


def timing_text(metrics: pd.DataFrame, registry: dict) -> str:
    timing, overhead = timing_table(metrics, registry)
    if timing.empty:
        return "No timings yet.\n"
    total = timing["seconds"].sum()
    timing["single-core minutes"] = [f"{s / 60:.0f}" for s in timing.pop("seconds")]
    return (markdown_table(timing) + f"\nEach run's training time comes from "
            f"`results/metrics.csv` (searches: `results/search/`), plus {overhead:.0f} s per run "
            f"for starting the notebook, loading the data and evaluating (the median measured "
            f"on the executed run pages). In all {total / 3600:.1f} hours of single-core "
            f"compute: with two runs at a time (`--jobs 2`, the default) `make report` takes "
            f"about {total / 7200:.1f} hours of wall time on a 2-core CPU, plus a few minutes "
            f"for the set-up, the analysis notebooks and the book build.\n")


def speed_table() -> pd.DataFrame:
    """``results/benchmarks/training.json`` (``nextloc benchmark speed``) as one row per
    experiment and code: CPU time per batch, epoch and run, and the speed-up of a run."""
    path = paths.RESULTS_DIR / "benchmarks" / "training.json"
    if not path.is_file():
        return pd.DataFrame()
    bench = json.loads(path.read_text())
    rows = []
    for name, entry in bench["experiments"].items():
        for code in ("reference", "current"):
            if entry[code] is None:
                continue
            cpu = entry[code]["cpu"]
            speedup = (entry["speedup_per_run"] or {}).get("cpu") if code == "current" else None
            per_round = entry.get("speedup_per_round", {}).get("cpu") if code == "current" else None
            rows.append({"experiment": f"`{name}`",
                         "code": f"{code} ({bench[code]['commit'][:7]})",
                         "ms per batch": f"{cpu['train_batch_ms']:.1f}",
                         "validation pass, s": f"{cpu['validation_seconds']:.2f}",
                         "epoch, s": f"{cpu['epoch_seconds']:.1f}",
                         "epochs per run": entry["epochs_per_run"],
                         "run, s": f"{cpu['run_seconds']:.0f}",
                         "run speed-up": f"{speedup:.2f}x" if speedup else "",
                         "per round": (f"{min(per_round):.2f}-{max(per_round):.2f}x"
                                       if per_round else "")})
    return pd.DataFrame(rows)


def update_readme(sentence: str) -> Path:
    path = paths.PROJECT_ROOT / "README.md"
    text = path.read_text()
    start, end = README_MARKERS
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        atomic_write(path, lambda tmp: tmp.write_text(
            pattern.sub(lambda _: f"{start}\n{sentence}\n{end}", text)))
    return path


def ordered_metrics(experiments: dict) -> pd.DataFrame:
    metrics = read_metrics()
    order = {n: i for i, n in enumerate(experiments)}
    return metrics.assign(order=metrics["experiment"].map(order)).sort_values(["order", "seed"])


def write_result_tables(metrics: pd.DataFrame, registry: dict, book) -> list[Path]:
    experiments = registry["experiments"]
    note = ("Test metrics in %, mean ± sample standard deviation over the seeds. Generated from "
            "`results/metrics.csv`.\n")
    written = [write("full_all", markdown_table(tables.full_table(
        metrics, list(dict.fromkeys(metrics["experiment"])), experiments)) + "\n" + note)]
    for group, names in registry.get("tables", {}).items():
        marked = tuple((registry.get("headline") or {}).get(k) for k in ("train_only", "refit"))
        written.append(write(f"results_{group}", markdown_table(
            tables.short_table(metrics, names, experiments, marked)) + "\n" + note
            + tables.KNOWN_NOTE))
        written.append(write(f"full_{group}", markdown_table(tables.full_table(
            metrics, names, experiments), empty="No runs yet.\n")))
        if group.endswith("_ablation"):
            written.append(write(f"deltas_{group}", markdown_table(
                tables.deltas_table(metrics, names, book.ablations[group]),
                empty="No ablation runs yet.\n")))
    return written


def write_other_tables(metrics: pd.DataFrame, registry: dict, book) -> list[Path]:
    experiments = registry["experiments"]
    written = write_claims(book, metrics, registry)
    for name, table in {
            "published": tables.published_table(metrics, registry),
            "baseline_notes": tables.prior_report_seed_table(metrics, experiments),
            "targets": tables.targets_table(metrics, registry.get("targets", [])),
            "targets_confirmation": tables.targets_table(metrics, [
                target for target in registry.get("targets", [])
                if target["experiment"].startswith("confirmation_")]),
            "seed_comparison": tables.seed_comparison(metrics, experiments),
            "pending": tables.pending_table(read_metrics(dataset=None), experiments),
            "speed": speed_table()}.items():
        written.append(write(name, markdown_table(table, empty=EMPTY.get(name, "None.\n"))))
    for name in registry.get("searches", {}):
        if (paths.RESULTS_DIR / "search" / f"{name}.csv").is_file():
            written.append(write(f"search_{name}", markdown_table(search_table(name, registry))))
    written.append(write("timing", timing_text(metrics, registry)))
    written.append(write("equivalence_margin", margin_text(metrics, book.margin)))
    written += road.write_road(metrics, registry)
    sentence = headline_sentence(metrics, registry)
    written += [write("headline_sentence", sentence + "\n"), update_readme(sentence)]
    return written


def write_report_sources(project: Project | None = None) -> list[Path]:
    """Every generated table and figure, the table of contents and the README headline of
    ``project`` (default: this one). Every results table is read (and checked) first, so a
    damaged line stops the command before it writes anything."""
    registry = (project or Project()).registry
    metrics = ordered_metrics(registry["experiments"])
    tables.check_headline(metrics, registry)
    for path in sorted((paths.RESULTS_DIR / "search").glob("*.csv")):
        read_search_table(path)
    superseded_table()
    metrics = tables.out_of_sample(metrics, registry["experiments"])
    book = book_verdicts(metrics, registry)
    setup()  # before the first figure (the road's, among the tables): deterministic SVG ids
    with all_or_nothing():  # a failure half-way (a full disk) leaves every page as it was
        written = write_result_tables(metrics, registry, book)
        written += write_other_tables(metrics, registry, book)
        written += write_extra(metrics, registry, book)
        written += write_figures(metrics, registry, book) + write_run_figures(metrics, registry)
        written += write_points_source(registry)
        written.append(write_toc(registry))
    return written
