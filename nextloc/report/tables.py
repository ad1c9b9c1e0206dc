"""The book's tables, built from ``results/metrics.csv`` and the registry (no file is written
here; :mod:`nextloc.report.build` writes them). Accuracies print in %, integers as integers, and a
cell that has no value says why instead of showing ``nan``."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from nextloc.core import paths
from nextloc.core.paths import atomic_write
from nextloc.report.stats import compare

NOT_RUN = "not run yet"
NBSP = "\u00a0"
SHORT_METRICS = {"test_acc1": "Acc@1 %", "test_acc1_known": "known places Acc@1 %",
                 "test_acc5": "Acc@5 %", "test_mrr": "MRR %"}
KNOWN_NOTE = ("Known places: the test targets other than the unseen-location class (places "
              "never visited in the training period).\n")
FULL_METRICS = {"test_acc1": "Acc@1 %", "test_acc5": "Acc@5 %", "test_acc10": "Acc@10 %",
                "test_mrr": "MRR %", "test_ndcg10": "NDCG@10 %", "test_f1": "F1 %"}


def write(name: str, text: str) -> Path:
    """Write ``book/generated/<name>.md``."""
    return atomic_write(paths.GENERATED / f"{name}.md", lambda tmp: tmp.write_text(text))


def mean_std(values: pd.Series, percent: bool = True) -> str:
    """Mean ± sample standard deviation (ddof=1), in % by default; one value prints alone."""
    values = values.dropna() * (100 if percent else 1)
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f}{NBSP}±{NBSP}{values.std(ddof=1):.2f}"  # never split in a cell


def markdown_table(frame: pd.DataFrame, empty: str | None = None) -> str:
    """``frame`` as a MyST table; ``empty``, if given, is written instead of an empty table."""
    if empty is not None and frame.empty:
        return empty
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def run_kind(spec: dict, runs: pd.DataFrame) -> str:
    """How an experiment's runs were made, in a few words."""
    if spec.get("refit"):
        return "B: refit on train + val"
    if "model.members" in spec:
        return "saved runs combined"
    if not runs.empty and (runs["n_params"] == 0).all():
        return "counting rule"
    return "A: train, val stops"


def short_row(name: str, spec: dict, runs: pd.DataFrame, marked: bool = False) -> dict:
    label = f"**`{name}` (headline)**" if marked else f"`{name}`"
    row = {"experiment": label, "how": run_kind(spec, runs)}
    if runs.empty:
        return {**row, "parameters": "–", "seeds": f"0 of {len(spec.get('seeds', []))}",
                **{label: NOT_RUN for label in SHORT_METRICS.values()}}
    listed = len(spec.get("seeds", []))
    # A rule without weights runs once for all seeds; a model with fewer runs than seeds says so.
    seeds = (f"{len(runs)} of {listed} so far" if len(runs) < listed
             and (runs["n_params"] > 0).all() else len(runs))
    return {**row, "parameters": f"{int(runs['n_params'].iloc[0]):,}", "seeds": seeds,
            **{label: every_seed(runs, column) for column, label in SHORT_METRICS.items()}}


def every_seed(runs: pd.DataFrame, column: str) -> str:
    """Mean ± std of ``column`` when every run has a value, else "–" (a known-place Acc@1 not
    filled yet by `nextloc results known`), never the mean of some of the seeds."""
    values = runs[column] if column in runs else pd.Series(dtype=float)
    return mean_std(values) if values.notna().all() else "–"


def short_table(metrics: pd.DataFrame, names: list[str], experiments: dict,
                marked: tuple[str, ...] = ()) -> pd.DataFrame:
    """The chapter table: Acc@1, Acc@1 on known places (targets other than the unseen class),
    Acc@5, MRR (mean ± std over seeds), parameters, seeds; the ``marked`` experiments (the
    headline) in bold."""
    return pd.DataFrame([short_row(name, experiments.get(name, {}),
                                   metrics[metrics["experiment"] == name], name in marked)
                         for name in names])


def validation_in_sample(name: str, experiments: dict) -> bool:
    """Whether ``name`` saw the validation split in training: a refit, or a combination of
    refit runs (their validation Acc@1 is in-sample, not a validation score)."""
    spec = experiments.get(name, {})
    members = " ".join(map(str, spec.get("model.members") or []))
    return bool(spec.get("refit")) or any(
        experiments.get(member, {}).get("refit")
        for member in re.findall(r"\{checkpoints\}/([^/]+)/", members))


def out_of_sample(metrics: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """``metrics`` with the in-sample validation Acc@1 of :func:`validation_in_sample`
    experiments blanked, so that no validation figure, rank statistic or table shows it."""
    in_sample = metrics["experiment"].map(lambda n: validation_in_sample(n, experiments))
    return metrics.assign(val_acc1=metrics["val_acc1"].where(~in_sample))


def full_row(name: str, spec: dict, runs: pd.DataFrame) -> dict:
    kind = run_kind(spec, runs)
    trained = kind.startswith("A:")
    figure = spec.get("prior_report_acc1")
    row = {"experiment": f"`{name}`", "seeds": len(runs),
           "parameters": f"{int(runs['n_params'].iloc[0]):,}",
           "prior report Acc@1 %": f"{100 * figure:.2f}" if figure else "did not run it",
           **{label: mean_std(runs[column]) for column, label in FULL_METRICS.items()},
           "val Acc@1 %": (mean_std(runs["val_acc1"]) if runs["val_acc1"].notna().any()
                           else "n/a: val is training data"),
           "test Acc@1 min–max %": f"{100 * runs['test_acc1'].min():.2f}–"
                                   f"{100 * runs['test_acc1'].max():.2f}",
           "best epoch (median)": (f"{runs['best_epoch'].median():.0f}" if trained else
                                   "n/a: fixed epochs" if spec.get("refit") else "n/a: no training"),
           "train min (mean)": f"{runs['train_seconds'].mean() / 60:.1f}"}
    return row


def full_table(metrics: pd.DataFrame, names: list[str], experiments: dict) -> pd.DataFrame:
    """Every metric of the experiments that have runs (appendix)."""
    rows = [full_row(name, experiments.get(name, {}), metrics[metrics["experiment"] == name])
            for name in names if (metrics["experiment"] == name).any()]
    return pd.DataFrame(rows)


def deltas_table(metrics: pd.DataFrame, names: list[str], results: list) -> pd.DataFrame:
    """Each ablation against the first experiment of the group on their shared seeds: paired
    mean difference of validation and test Acc@1, the 95 % t interval of the test one, its
    Benjamini-Hochberg q over the book and the verdict (``results``: the group's
    :class:`nextloc.report.claims.ArmResult`, from
    :func:`nextloc.report.verdicts.book_verdicts`)."""
    rows = []
    for result in results:
        name, test = result.arm.experiment, result.comparison
        val = compare(metrics, name, names[0], "val_acc1")
        rows.append({"ablation": f"`{name}`", "seeds": test.n,
                     "val change, points": f"{val.mean:+.2f}" if val else "–",
                     "test change, points [95 % CI]": test.text(),
                     "q": f"{result.q:.3f}",
                     # an ablation asks only whether the change matters, in either direction
                     "test verdict": "differs" if result.verdict == "supported"
                     else result.verdict})
    return pd.DataFrame(rows)


def seed_comparison(metrics: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """Each experiment the prior report ran: its single-run figure against our seeds."""
    rows = []
    for name, spec in experiments.items():
        runs = metrics.loc[metrics["experiment"] == name, "test_acc1"] * 100
        figure = spec.get("prior_report_acc1")
        if figure is None or runs.empty:
            continue
        figure *= 100
        if runs.min() <= figure <= runs.max():
            where = "inside the range of our seeds"
        else:
            where = f"{'above' if figure > runs.max() else 'below'} all {len(runs)} of our seeds"
        rows.append({"experiment": f"`{name}`", "prior report Acc@1 %": f"{figure:.2f}",
                     "ours, mean ± std %": mean_std(runs / 100),
                     "ours, min–max %": f"{runs.min():.2f}–{runs.max():.2f}",
                     "the prior report's figure is": where})
    return pd.DataFrame(rows)


def prior_report_seed_table(metrics: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """Our runs beside the prior report's runs with the same seed, where it names seeds."""
    rows = []
    for name, spec in experiments.items():
        for seed, figure in spec.get("prior_report_by_seed", {}).items():
            ours = metrics[(metrics["experiment"] == name) & (metrics["seed"] == seed)]
            if not ours.empty:
                rows.append({"experiment": f"`{name}`", "seed": seed,
                             "prior report test Acc@1 %": f"{100 * figure:.2f}",
                             "ours %": f"{100 * ours['test_acc1'].iloc[0]:.2f}",
                             "ours, best epoch": int(ours["best_epoch"].iloc[0])})
    return pd.DataFrame(rows)


def targets_table(metrics: pd.DataFrame, targets: list[dict]) -> pd.DataFrame:
    rows = []
    for target in targets:
        runs = metrics.loc[metrics["experiment"] == target["experiment"], target["metric"]]
        if runs.empty:
            continue
        rows.append({"experiment": f"`{target['experiment']}`", "seeds": len(runs),
                     "metric": target["metric"], "mean ± std %": mean_std(runs),
                     "lowest seed %": f"{100 * runs.min():.2f}",
                     "target %": f"≥ {100 * target['at_least']:g}",
                     "mean meets it": "yes" if runs.mean() >= target["at_least"] else "no"})
    return pd.DataFrame(rows)


def published_table(metrics: pd.DataFrame, registry: dict) -> pd.DataFrame:
    """Quoted published figures (verified or marked not verified) beside our headline rows."""
    rows = [{"method": item["method"],
             "test Acc@1 %": f"{item['acc1']:.2f}" if item.get("acc1") else "not verified",
             "source": f"{{cite:t}}`{item['source']}`" if item.get("source") else "none found",
             "where the number comes from": item["where"], "protocol": item["protocol"]}
            for item in registry.get("published", [])]
    prior = registry["experiments"].get("baseline", {}).get("prior_report_acc1")
    if prior is not None:  # a registry of one's own need not re-run the prior report
        rows.append({"method": "prior report, best single run (its baseline)",
                     "test Acc@1 %": f"{100 * prior:.2f}", "source": "the prior report",
                     "where the number comes from": "its results table",
                     "protocol": "one seed, train only"})
    headline = registry.get("headline") or {}
    for name in ["baseline", *(headline[k] for k in ("train_only", "refit") if k in headline)]:
        runs = metrics.loc[metrics["experiment"] == name, "test_acc1"]
        spec = registry["experiments"].get(name, {})
        if not runs.empty:
            rows.append({"method": f"`{name}`", "test Acc@1 %": mean_std(runs),
                         "source": "this report",
                         "where the number comes from": f"`results/metrics.csv`, {len(runs)} seeds",
                         "protocol": ("refit on train + **validation** data, fixed epochs"
                                      if spec.get("refit") else "train only, val picks the epoch")})
    return pd.DataFrame(rows)


def pending_table(metrics: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """Registry experiments with fewer finished runs than listed seeds."""
    rows = []
    for name, spec in experiments.items():
        done = int((metrics["experiment"] == name).sum())
        if done < len(spec["seeds"]):
            rows.append({"experiment": f"`{name}`", "finished runs": done,
                         "seeds listed": len(spec["seeds"])})
    return pd.DataFrame(rows)


def check_headline(metrics: pd.DataFrame, registry: dict) -> None:
    """The headline is the report's one claim under the parameter budget: an over-budget model
    named there is refused before any file is written, never printed into the README."""
    from nextloc.core.errors import ResultsError
    from nextloc.models import PARAMETER_BUDGET

    headline = registry.get("headline") or {}
    for role in ("train_only", "refit"):
        rows = metrics[metrics["experiment"] == headline.get(role)]
        if len(rows) and int(rows["n_params"].max()) >= PARAMETER_BUDGET:
            raise ResultsError(
                f"headline {role} '{headline[role]}' has {int(rows['n_params'].max()):,} "
                f"parameters in results/metrics.csv, at or over the budget of "
                f"{PARAMETER_BUDGET:,}; name an experiment under the budget in the registry "
                f"'headline:'. Nothing was written.")
