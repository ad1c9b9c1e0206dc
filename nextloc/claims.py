"""The prior report's claims (``claims:`` in experiments.yaml), each tested by one or more paired
comparisons ("arms") and given a verdict from their 95 % confidence intervals.

A claim entry::

    - claim: "Larger batch (> 64) does not help, may hurt"
      chapter: recipe           # the chapter whose table lists it (every claim is in claims.md)
      expect: lower             # what the claim predicts for experiment − versus
      arms: [[baseline_batch_128, baseline], [baseline_batch_256, baseline]]
      rule: all                 # or 'any': one decided arm decides the claim
      claimed: [3, 5]           # optional: the effect size the prior report promised, in points
      note: "..."               # optional: what the test can and cannot say

An arm is ``[experiment, versus]`` or a mapping with ``experiment``, ``versus`` and optionally
``metric`` / ``versus_metric`` (default ``test_acc1``), ``expect`` (overrides the claim's) and
``prior_versus`` (the experiment whose prior-report figure the prior report compared with). An arm
whose runs are not all finished is 'pending'; a claim whose arms are all pending is 'pending'.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from nextloc.registry import load_registry
from nextloc.stats import PENDING, Comparison, arm_verdict, claim_verdict, compare


@dataclass(frozen=True)
class Arm:
    experiment: str
    versus: str
    expect: str
    metric: str = "test_acc1"
    versus_metric: str | None = None
    prior_versus: str | None = None

    def label(self) -> str:
        if self.experiment == self.versus:
            return f"`{self.experiment}`: {self.metric} − {self.versus_metric}"
        return f"`{self.experiment}` − `{self.versus}`"


@dataclass
class ArmResult:
    arm: Arm
    comparison: Comparison | None
    verdict: str
    status: str = ""
    prior_difference: float | None = None


@dataclass
class ClaimResult:
    claim: dict
    arms: list[ArmResult] = field(default_factory=list)
    verdict: str = PENDING


def parse_arm(entry, expect: str) -> Arm:
    if isinstance(entry, (list, tuple)):
        return Arm(entry[0], entry[1], expect)
    return Arm(entry["experiment"], entry["versus"], entry.get("expect", expect),
               entry.get("metric", "test_acc1"), entry.get("versus_metric"),
               entry.get("prior_versus"))


def completeness(metrics: pd.DataFrame, experiments: dict, name: str) -> tuple[int, int]:
    """(finished runs, seeds listed in the registry) of one experiment."""
    done = int((metrics["experiment"] == name).sum())
    return done, len(experiments.get(name, {}).get("seeds", [])) or done


def prior_difference(arm: Arm, experiments: dict) -> float | None:
    """The prior report's own difference for this comparison, in points, where it gave one."""
    first = experiments.get(arm.experiment, {}).get("prior_report_acc1")
    second = experiments.get(arm.prior_versus or arm.versus, {}).get("prior_report_acc1")
    if first is None or second is None or arm.metric != "test_acc1":
        return None
    return 100 * (first - second)


def evaluate_arm(metrics: pd.DataFrame, arm: Arm, experiments: dict) -> ArmResult:
    prior = prior_difference(arm, experiments)
    missing = []
    for name in dict.fromkeys([arm.experiment, arm.versus]):
        done, listed = completeness(metrics, experiments, name)
        if done < listed or done == 0:
            missing.append(f"`{name}` not run yet" if done == 0 else
                           f"`{name}` {done} of {listed} runs")
    comparison = None if missing else compare(metrics, arm.experiment, arm.versus, arm.metric,
                                              arm.versus_metric)
    if comparison is None:
        status = "; ".join(missing) or "fewer than 2 shared seeds"
        return ArmResult(arm, None, PENDING, f"pending ({status})", prior)
    return ArmResult(arm, comparison, arm_verdict(comparison.low, comparison.high, arm.expect),
                     prior_difference=prior)


def evaluate_claims(metrics: pd.DataFrame, registry: dict | None = None) -> list[ClaimResult]:
    registry = registry or load_registry()
    experiments = registry["experiments"]
    results = []
    for claim in registry.get("claims", []):
        arms = [evaluate_arm(metrics, parse_arm(entry, claim.get("expect", "higher")),
                             experiments) for entry in claim["arms"]]
        results.append(ClaimResult(claim, arms, claim_verdict([a.verdict for a in arms],
                                                              claim.get("rule", "all"))))
    return results


def claimed_size(claim: dict, arms: list[ArmResult]) -> str:
    """Where the intervals fall against the effect size the prior report promised."""
    if "claimed" not in claim:
        return ""
    low, high = claim["claimed"]
    done = [a.comparison for a in arms if a.comparison is not None]
    promised = f"promised {low:+g} to {high:+g} points"
    if not done:
        return promised
    below = sum(c.high < low for c in done)
    inside = sum(c.low <= high and c.high >= low for c in done)
    return (f"{promised}; intervals reaching that range: {inside} of {len(done)}, entirely "
            f"below it: {below}")


def arm_line(result: ArmResult) -> str:
    comparison = result.comparison
    if comparison is None:
        return f"{result.arm.label()}: {result.status}"
    prior = (f"; prior report {result.prior_difference:+.2f}"
             if result.prior_difference is not None else "")
    return (f"{result.arm.label()} ({comparison.n} seeds): {comparison.text()}{prior}, "
            f"*{result.verdict}*")


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


def claims_markdown(results: list[ClaimResult], chapter: str | None = None) -> str:
    """The claims table (all claims, or one chapter's), as a MyST list-table."""
    rows = []
    for result in results:
        claim = result.claim
        if chapter is not None and claim.get("chapter") != chapter:
            continue
        text = claim["claim"]
        extra = "; ".join(filter(None, [claimed_size(claim, result.arms), claim.get("note", "")]))
        if extra:
            text += f" ({extra})"
        arms = "\n".join(arm_line(a) for a in result.arms)
        pending = sum(a.verdict == PENDING for a in result.arms)
        verdict = f"**{result.verdict}**"
        if pending and result.verdict != PENDING:
            verdict += f" ({pending} of {len(result.arms)} tests pending)"
        rows.append([text, arms, verdict])
    if not rows:
        return "No claims in this group.\n"
    header = ["prior report's claim", "test: difference in test Acc@1, points [95 % CI]",
              "verdict"]
    return list_table(rows, header, [30, 55, 15])
