"""Every comparison of the book in one multiplicity family: the claims' arms, their pooled
estimates and the ablation tables (``tables:`` groups ending in ``_ablation``) get one
Benjamini-Hochberg correction, and each verdict uses its adjusted q-value.

``statistics:`` in the registry declares the equivalence margin (points of test Acc@1) once;
the book's statistics section says why that margin. ``book/generated/claims.csv`` holds one row
per arm and one per claim (``arm`` = ``pooled``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from nextloc.report.claims import (DEFAULT_MARGIN, Arm, ArmResult, ClaimResult, evaluate_arm,
                            evaluate_claim)
from nextloc.report.stats import PENDING, benjamini_hochberg, verdict


@dataclass
class BookVerdicts:
    claims: list[ClaimResult]
    ablations: dict[str, list[ArmResult]]
    margin: float

    def all_results(self) -> list[ArmResult]:
        found = [a for c in self.claims for a in [*c.arms, c.pooled] if a is not None]
        return found + [a for arms in self.ablations.values() for a in arms]


def margin_of(registry: dict) -> float:
    return float((registry.get("statistics") or {}).get("equivalence_margin", DEFAULT_MARGIN))


def ablation_results(metrics: pd.DataFrame, registry: dict) -> dict[str, list[ArmResult]]:
    """Each ablation group's rows against its first experiment (a difference of either sign is
    what such a table asks about), on the seeds both have run."""
    groups = {}
    for group, names in (registry.get("tables") or {}).items():
        if not group.endswith("_ablation"):
            continue
        experiments = {n: {"seeds": sorted(set(metrics.loc[metrics["experiment"] == n, "seed"]))}
                       for n in names}
        arms = [evaluate_arm(metrics, Arm(n, names[0], "either"), experiments)
                for n in names[1:]]
        groups[group] = [a for a in arms if a.comparison is not None]
    return groups


def book_verdicts(metrics: pd.DataFrame, registry: dict) -> BookVerdicts:
    experiments = registry["experiments"]
    claims = [evaluate_claim(metrics, claim, experiments) for claim in registry.get("claims", [])]
    book = BookVerdicts(claims, ablation_results(metrics, registry), margin_of(registry))
    # One test per distinct comparison: an arm shared by two claims, or a claim with a single
    # arm (whose pooled estimate is that arm), is counted once.
    tests: dict[tuple, float] = {}
    for result in book.all_results():
        if result.comparison is not None:
            tests.setdefault(test_key(result), result.comparison.p_value)
    q_of = dict(zip(tests, benjamini_hochberg(list(tests.values()))))
    for result in book.all_results():
        if result.comparison is None:
            continue
        result.q = float(q_of[test_key(result)])
        result.verdict = verdict(result.comparison, result.q, result.arm.expect, result.claimed,
                                 book.margin)
    return book


def test_key(result: ArmResult) -> tuple:
    """Two results are one test when their per-seed differences are the same numbers."""
    return (result.comparison.seeds, result.comparison.differences)


def claims_frame(book: BookVerdicts) -> pd.DataFrame:
    """claims.csv: one row per arm and one per claim (``arm`` = pooled), in points of test
    Acc@1 (val − test for the validation-gap claim)."""
    rows = []
    for claim in book.claims:
        for result in [*claim.arms, claim.pooled]:
            if result is None:
                continue
            label = "pooled" if result.arm.experiment == "pooled" else result.arm.label()
            rows.append(result_row(claim.claim["claim"], label.replace("`", ""), result))
        if claim.pooled is None:
            rows.append({"claim": claim.claim["claim"], "arm": "pooled", "verdict": PENDING})
    frame = pd.DataFrame(rows, columns=["claim", "arm", "n_seeds", "diff", "lo", "hi", "q",
                                        "verdict", "claimed_low", "claimed_high", "detectable"])
    return frame.astype({"n_seeds": "Int64"})


def result_row(claim: str, arm: str, result: ArmResult) -> dict:
    c = result.comparison
    if c is None:
        return {"claim": claim, "arm": arm, "verdict": PENDING}
    claimed = result.claimed or (None, None)
    return {"claim": claim, "arm": arm, "n_seeds": c.n, "diff": round(c.mean, 4),
            "lo": round(c.low, 4), "hi": round(c.high, 4), "q": round(result.q, 6),
            "verdict": result.verdict,
            "claimed_low": None if claimed[0] is None else round(min(claimed), 4),
            "claimed_high": None if claimed[1] is None else round(max(claimed), 4),
            "detectable": round(c.detectable(), 4)}


def best_epochs_text(claim: dict, metrics: pd.DataFrame) -> str:
    """For a claim about when training peaked: the best epochs its runs recorded."""
    if "best_epoch" not in claim:
        return ""
    experiment = parse_first_experiment(claim)
    epochs = metrics.loc[metrics["experiment"] == experiment, "best_epoch"].astype(int)
    if epochs.empty:
        return ""
    return (f"claimed best epoch {claim['best_epoch']}; recorded best epochs "
            f"{', '.join(map(str, sorted(epochs)))} (median {epochs.median():g})")


def parse_first_experiment(claim: dict) -> str:
    first = claim["arms"][0]
    return first[0] if isinstance(first, (list, tuple)) else first.get("experiment", "")


def result_text(result: ArmResult) -> str:
    c = result.comparison
    if c is None:
        return result.status or PENDING
    size = ""
    if result.claimed is not None:
        low, high = min(result.claimed), max(result.claimed)
        size = f"; claimed {low:+.2f}" + (f" to {high:+.2f}" if high != low else "")
    detect = (f"; could detect ±{c.detectable():.1f}" if result.verdict == "inconclusive"
              else "")
    return f"{c.n} seeds: {c.text()}, q = {result.q:.3f}{size}{detect}, *{result.verdict}*"


def arm_line(result: ArmResult) -> str:
    prior = (f" (prior report {result.prior_difference:+.2f})"
             if result.prior_difference is not None and result.claimed is None else "")
    return f"{result.arm.label()}{prior}: {result_text(result)}"


def list_table(rows: list[list[str]], header: list[str], widths: list[int]) -> str:
    """A MyST ``list-table`` whose cells may hold several lines (each line a bullet)."""
    def cell(text: str, first: bool) -> str:
        lead = "* - " if first else "  - "
        lines = text.split("\n")
        if len(lines) == 1:
            return lead + text
        return lead + "\n".join(("" if i == 0 else "    ") + "- " + line
                                for i, line in enumerate(lines))

    body = [cell(text, i == 0) for row in [header, *rows] for i, text in enumerate(row)]
    return ("```{list-table}\n:header-rows: 1\n:widths: " + " ".join(map(str, widths))
            + "\n:class: claims-table\n\n" + "\n".join(body) + "\n```\n")


def claims_markdown(book: BookVerdicts, metrics: pd.DataFrame,
                    chapter: str | None = None) -> str:
    """The claims table (all claims, or one chapter's): each arm, then the pooled estimate the
    verdict comes from."""
    rows = []
    for result in book.claims:
        claim = result.claim
        if chapter is not None and claim.get("chapter") != chapter:
            continue
        extra = "; ".join(filter(None, [claim.get("note", ""),
                                        best_epochs_text(claim, metrics)]))
        text = claim["claim"] + (f" ({extra})" if extra else "")
        lines = [arm_line(a) for a in result.arms]
        if len(result.arms) > 1:
            lines.append("pooled over the arms, per seed: " + (
                result_text(result.pooled) if result.pooled else "pending"))
        rows.append([text, "\n".join(lines), f"**{result.verdict}**"])
    if not rows:
        return "No claims in this group.\n"
    header = ["prior report's claim",
              "test: difference in test Acc@1, points [95 % CI], Benjamini-Hochberg q",
              "verdict"]
    return list_table(rows, header, [28, 58, 14])


def write_claims(book: BookVerdicts, metrics: pd.DataFrame, registry: dict) -> list:
    from nextloc.report.tables import markdown_table, write

    frame = claims_frame(book)
    path = write("claims", claims_markdown(book, metrics))
    csv_path = path.with_name("claims.csv")
    from nextloc.core.paths import atomic_write

    atomic_write(csv_path, lambda tmp: frame.to_csv(tmp, index=False))
    paths = [path, csv_path]
    table, runs, hours = seed_plan(book, metrics)
    note = (f"\n{len(table)} comparisons are wider than ±{MAX_HALF_WIDTH:g} points with fewer "
            f"than {MAX_SEEDS} seeds; narrowing them (at their observed spread) takes {runs} "
            f"more runs, about {hours:.1f} core-hours of training.\n" if len(table) else "")
    paths.append(write("seed_plan", markdown_table(table, empty="Every comparison is narrow "
                                                   "enough or has the most seeds.\n") + note))
    for chapter in dict.fromkeys(c.get("chapter") for c in registry.get("claims", [])):
        paths.append(write(f"claims_{chapter}", claims_markdown(book, metrics, chapter)))
    return paths


def margin_text(metrics: pd.DataFrame, margin: float) -> str:
    """The declared equivalence margin, in points and in test predictions, beside the
    baseline's seed-to-seed spread."""
    baseline = metrics.loc[metrics["experiment"] == "baseline", "test_acc1"]
    spread = (f"; the baseline's test Acc@1 varies by {100 * baseline.std():.2f} points "
              f"(standard deviation over its {len(baseline)} seeds)" if len(baseline) > 1 else "")
    runs = metrics[metrics["experiment"] == "baseline"]
    samples = ""
    if not runs.empty:
        from nextloc.report.analysis import correct_by_seed

        correct = correct_by_seed("baseline")
        if not correct.empty:
            samples = f" ({margin / 100 * len(correct):,.0f} of {len(correct):,} test samples)"
    return f"Equivalence margin: ±{margin:g} point of test Acc@1{samples}{spread}.\n"


MAX_HALF_WIDTH, MAX_SEEDS = 1.5, 10


def seeds_needed(comparison, max_half_width: float = MAX_HALF_WIDTH,
                 max_seeds: int = MAX_SEEDS) -> int:
    """The fewest seeds (at most ``max_seeds``) whose 95 % half-width would be at most
    ``max_half_width`` points if the per-seed differences kept their observed spread."""
    from scipy import stats as scipy_stats

    for n in range(comparison.n, max_seeds + 1):
        if scipy_stats.t.ppf(0.975, n - 1) * comparison.sd / n ** 0.5 <= max_half_width:
            return n
    return max_seeds


def seed_plan(book: BookVerdicts, metrics: pd.DataFrame) -> pd.DataFrame:
    """Every claim arm wider than the allowed half-width with fewer than the most seeds: the
    seeds it would need, and the training time that would take (its experiments' mean seconds
    a run, counted once per experiment)."""
    rows, extra = [], {}
    seconds = metrics.groupby("experiment")["train_seconds"].mean()
    for claim in book.claims:
        for result in claim.arms:
            c = result.comparison
            if c is None or result.arm.seeds is not None or c.half_width <= MAX_HALF_WIDTH \
                    or c.n >= MAX_SEEDS:
                continue
            need = seeds_needed(c)
            for name in result.arm.experiments():
                have = int((metrics["experiment"] == name).sum())
                if seconds.get(name, 0) > 0:
                    extra[name] = max(extra.get(name, 0), need - have)
            rows.append({"comparison": result.arm.label(), "seeds": c.n,
                         "half-width, points": f"{c.half_width:.2f}",
                         "seeds needed": need})
    hours = sum(n * seconds[name] for name, n in extra.items()) / 3600
    table = pd.DataFrame(rows).drop_duplicates("comparison")
    return table, sum(extra.values()), hours
