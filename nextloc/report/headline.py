"""The headline in one sentence: accuracy under both protocols, known-place accuracy, how the
configuration was confirmed, and the training compute behind it, teachers included (every run
the headline reads, directly or through others)."""
from __future__ import annotations

import pandas as pd

from nextloc.report.tables import mean_std


def closure(name: str) -> list[str]:
    """``name`` and every experiment whose runs it reads, directly or through others (teachers,
    their members, the experiments refits take their epochs from)."""
    from nextloc.experiments.registry import load_registry
    from nextloc.experiments.runner import dependencies

    experiments = load_registry()["experiments"]
    seen, todo = [], [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in experiments:
            continue
        seen.append(current)
        todo.extend(dependencies(current, experiments[current]))
    return seen


def chain_compute(metrics: pd.DataFrame, name: str) -> tuple[int, float, list[str]] | None:
    """(trained runs, core-hours of training, experiments) behind all runs of ``name``; None
    while one of them has no runs."""
    names = closure(name)
    runs = metrics[metrics["experiment"].isin(names) & (metrics["train_seconds"] > 0)]
    if any(not (metrics["experiment"] == n).any() for n in names):
        return None
    return len(runs), float(runs["train_seconds"].sum()) / 3600, names


def compute_text(metrics: pd.DataFrame, registry: dict) -> str:
    """The training compute of the headline, teachers included, beside the best model that
    needs no teacher."""
    headline = registry.get("headline") or {}
    parts = []
    for key, protocol in (("train_only", "A"), ("refit", "B")):
        if key not in headline:
            continue
        found = chain_compute(metrics, headline[key])
        seeds = int((metrics["experiment"] == headline[key]).sum())
        if found is None or seeds == 0:
            parts.append(f"protocol {protocol}: runs pending")
            continue
        runs, hours, _ = found
        parts.append(f"protocol {protocol}: {runs} trained runs for its {seeds} seeds, teachers "
                     f"and their members included, {hours:.1f} core-hours of training")
    plain = registry.get("headline", {}).get("without_teacher")
    if plain:
        found = chain_compute(metrics, plain)
        if found:
            runs, hours, _ = found
            parts.append(f"the best model without a teacher, `{plain}`: {runs} runs, "
                         f"{hours:.1f} core-hours ({hours / max(runs, 1) * 60:.0f} core-minutes "
                         f"a run)")
    return "; ".join(parts)


def headline_sentence(metrics: pd.DataFrame, registry: dict) -> str:
    """The result in one sentence, both protocols, from the metrics: accuracy, known-place
    accuracy, how the configuration was confirmed, and the training compute."""
    def runs(name: str, column: str = "test_acc1") -> pd.Series:
        if column not in metrics:
            return pd.Series(dtype=float)
        return metrics.loc[metrics["experiment"] == name, column].dropna()

    headline = registry.get("headline") or {}
    if not headline:
        return "The registry names no headline experiments."
    name = headline["train_only"]
    train_only, refit, base = runs(name), runs(headline["refit"]), runs("baseline")
    if train_only.empty or base.empty:
        return "The headline runs have not finished yet."
    params = int(metrics.loc[metrics["experiment"] == name, "n_params"].iloc[0])
    confirmed = (f"; the configuration of the last search step, frozen at commit "
                 f"{headline['frozen_at']} and run again, teachers included, on "
                 f"{len(headline['confirmation_seeds'])} seeds no run or search had used"
                 if headline.get("confirmation_seeds") and headline.get("frozen_at") else "")
    listed = len((registry.get("experiments") or {}).get(headline["refit"], {}).get("seeds", [])
                 ) or len(refit)
    if len(refit) >= max(listed, 1):
        refit_text = (f"{mean_std(refit)} % when refit on training + validation data "
                      f"(protocol B, {len(refit)} seeds)")
    else:
        era = runs((headline.get("search_era") or {}).get("refit", ""))
        refit_text = (f"{len(refit)} of its {listed} confirmation runs refit on training + "
                      f"validation data (protocol B) have finished so far"
                      + (f" ({mean_std(refit)} %)" if len(refit) > 1 else "")
                      + (f", the search-era refit of the same configuration reached "
                         f"{mean_std(era)} % ({len(era)} seeds)" if len(era) > 1 else ""))
    text = (f"The headline model, `{name}` ({params:,} parameters{confirmed}), reaches "
            f"{mean_std(train_only)} % test Acc@1 when trained on the training split alone "
            f"(protocol A, {len(train_only)} seeds); {refit_text}; against "
            f"{mean_std(base)} % for the prior report's baseline re-run ({len(base)} seeds; "
            f"mean ± std).")
    known, known_base = runs(name, "test_acc1_known"), runs("baseline", "test_acc1_known")
    if not known.empty and not known_base.empty:
        text += (f" On the test targets that are known places (not the unseen class) it "
                 f"reaches {mean_std(known)} % under protocol A, against "
                 f"{mean_std(known_base)} % for the baseline.")
    compute = compute_text(metrics, registry)
    if compute and not compute.startswith("protocol A: runs pending"):
        text += f" Training compute: {compute}."
    return text
