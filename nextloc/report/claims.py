"""The prior report's claims (``claims:`` in the registry), each tested by one or more
comparisons ("arms"), pooled into one estimate per claim, and given a size-aware verdict.

A claim entry::

    - claim: "Ensemble of 10+ good models → +2–3 %"
      chapter: wishlist         # the chapter whose table lists it (every claim is in claims.md)
      expect: higher            # higher, lower, either or equal: what it predicts for the arms
      claimed: [2, 3]           # optional: the claimed size in points, signed like the arms
      note: "..."               # optional: what the test can and cannot say
      arms: [[ensemble_10_over_budget, baseline], [pointer_pair, pointer]]

An arm is one of

- ``[experiment, versus]``, or a mapping with ``experiment``, ``versus`` and optionally
  ``metric`` / ``versus_metric`` (default ``test_acc1``), ``expect`` (overrides the claim's) and
  ``prior_versus`` (the experiment whose prior-report figure the prior report compared with);
  its claimed size is the claim's, else the prior report's own single-run difference;
- ``{experiment: X, value: 0.3795}``: X's runs against a figure the prior report gave;
- ``{seeds: [42, 123]}``: the first seed against the second, over every trained experiment that
  ran both (the experiments are the replicates).

Arms are pooled per seed (:func:`nextloc.report.stats.pool`); the pooled estimate is the claim's.
Every comparison of the book (arms, pooled claims and the ablation tables) shares one
Benjamini-Hochberg correction (:mod:`nextloc.report.verdicts`). An arm whose runs are not all
finished is 'pending'; a claim with a pending arm is 'pending'.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from nextloc.report.stats import PENDING, Comparison, compare, from_differences, pool

DEFAULT_MARGIN = 1.0


@dataclass(frozen=True)
class Arm:
    experiment: str
    versus: str
    expect: str
    metric: str = "test_acc1"
    versus_metric: str | None = None
    prior_versus: str | None = None
    value: float | None = None
    seeds: tuple[int, int] | None = None

    def label(self) -> str:
        if self.seeds is not None:
            return f"seed {self.seeds[0]} − seed {self.seeds[1]}, over experiments"
        if self.value is not None:
            return f"`{self.experiment}` − the prior report's {100 * self.value:.2f} %"
        if self.experiment == self.versus:
            return f"`{self.experiment}`: {self.metric} − {self.versus_metric}"
        return f"`{self.experiment}` − `{self.versus}`"

    def experiments(self) -> list[str]:
        return [] if self.seeds is not None else list(dict.fromkeys([self.experiment,
                                                                       self.versus]))


@dataclass
class ArmResult:
    arm: Arm
    comparison: Comparison | None
    claimed: tuple[float, float] | None = None
    status: str = ""
    prior_difference: float | None = None
    q: float | None = None
    verdict: str = PENDING


@dataclass
class ClaimResult:
    claim: dict
    arms: list[ArmResult] = field(default_factory=list)
    pooled: ArmResult | None = None

    @property
    def verdict(self) -> str:
        return self.pooled.verdict if self.pooled is not None else PENDING


def parse_arm(entry, expect: str) -> Arm:
    if isinstance(entry, (list, tuple)):
        return Arm(entry[0], entry[1], expect)
    if "seeds" in entry:
        first, second = entry["seeds"]
        return Arm("seeds", "seeds", entry.get("expect", expect), seeds=(first, second))
    if "value" in entry:
        return Arm(entry["experiment"], entry["experiment"], entry.get("expect", expect),
                   value=float(entry["value"]))
    return Arm(entry["experiment"], entry["versus"], entry.get("expect", expect),
               entry.get("metric", "test_acc1"), entry.get("versus_metric"),
               entry.get("prior_versus"))


def completeness(metrics: pd.DataFrame, experiments: dict, name: str) -> tuple[int, int]:
    """(finished runs on the registry's seeds, seeds listed in the registry) of one
    experiment."""
    runs = metrics[metrics["experiment"] == name]
    listed = experiments.get(name, {}).get("seeds", [])
    if not listed:
        return len(runs), len(runs)
    if len(runs) == 1 and runs["n_params"].iloc[0] == 0:
        return len(listed), len(listed)  # a rule without weights holds for every seed
    return int(runs["seed"].isin(listed).sum()), len(listed)


def prior_difference(arm: Arm, experiments: dict) -> float | None:
    """The prior report's own difference for this comparison, in points, where it gave one."""
    if arm.value is not None or arm.seeds is not None or arm.metric != "test_acc1":
        return None
    first = experiments.get(arm.experiment, {}).get("prior_report_acc1")
    second = experiments.get(arm.prior_versus or arm.versus, {}).get("prior_report_acc1")
    if first is None or second is None:
        return None
    return 100 * (first - second)


def seed_comparison(metrics: pd.DataFrame, first: int, second: int) -> Comparison | None:
    """``first`` minus ``second`` seed over every trained experiment that ran both."""
    trained = metrics[metrics["n_params"] > 0]
    table = trained.pivot_table(index="experiment", columns="seed", values="test_acc1")
    if first not in table or second not in table:
        return None
    differences = 100 * (table[first] - table[second]).dropna().reset_index(drop=True)
    return from_differences(f"seed {first}", f"seed {second}", differences)


def arm_comparison(metrics: pd.DataFrame, arm: Arm) -> Comparison | None:
    if arm.seeds is not None:
        return seed_comparison(metrics, *arm.seeds)
    if arm.value is not None:
        runs = metrics[metrics["experiment"] == arm.experiment].set_index("seed")
        return from_differences(arm.experiment, f"{arm.value}",
                                100 * (runs[arm.metric].astype(float) - arm.value))
    return compare(metrics, arm.experiment, arm.versus, arm.metric, arm.versus_metric)


def evaluate_arm(metrics: pd.DataFrame, arm: Arm, experiments: dict,
                 claimed: tuple[float, float] | None = None) -> ArmResult:
    prior = prior_difference(arm, experiments)
    if claimed is None and prior is not None:
        claimed = (prior, prior)
    missing = []
    for name in arm.experiments():
        done, listed = completeness(metrics, experiments, name)
        if done < listed or done == 0:
            missing.append(f"`{name}` not run yet" if done == 0 else
                           f"`{name}` {done} of {listed} runs")
    comparison = None if missing else arm_comparison(metrics, arm)
    if comparison is None:
        status = "; ".join(missing) or "fewer than 2 shared seeds"
        return ArmResult(arm, None, claimed, f"pending ({status})", prior)
    return ArmResult(arm, comparison, claimed, prior_difference=prior)


def claim_arms(claim: dict) -> list[Arm]:
    return [parse_arm(entry, claim.get("expect", "higher")) for entry in claim["arms"]]


def evaluate_claim(metrics: pd.DataFrame, claim: dict, experiments: dict) -> ClaimResult:
    """The arms and the pooled estimate of one claim, without q-values or verdicts yet."""
    claimed = tuple(claim["claimed"]) if "claimed" in claim else None
    arms = [evaluate_arm(metrics, arm, experiments, claimed) for arm in claim_arms(claim)]
    result = ClaimResult(claim, arms)
    if any(a.comparison is None for a in arms):
        return result
    comparison = pool([a.comparison for a in arms], label=claim["claim"])
    if comparison is None:
        return result
    priors = [a.prior_difference for a in arms]
    if claimed is None and all(p is not None for p in priors):
        claimed = (sum(priors) / len(priors),) * 2
    expect = claim.get("expect", "higher")
    result.pooled = ArmResult(Arm("pooled", "pooled", expect), comparison, claimed)
    return result
