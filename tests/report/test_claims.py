"""Claims of the prior report: parsing, pending runs, pooling, one multiplicity family, verdicts,
claims.csv and the rendered table."""
from __future__ import annotations

import pandas as pd
import pytest

from nextloc.report.claims import parse_arm
from nextloc.report.stats import PENDING, benjamini_hochberg
from nextloc.report.verdicts import book_verdicts, claims_frame, claims_markdown, list_table


def runs(name: str, accuracies: list[float], seeds=(1, 2, 3)) -> pd.DataFrame:
    return pd.DataFrame({"experiment": name, "seed": list(seeds)[:len(accuracies)],
                         "test_acc1": accuracies, "val_acc1": accuracies, "n_params": 100,
                         "best_epoch": 4})


REGISTRY = {
    "experiments": {
        "base": {"seeds": [1, 2, 3], "prior_report_acc1": 0.38},
        "base_p5": {"seeds": [1, 2, 3]},
        "fancy": {"seeds": [1, 2, 3], "prior_report_acc1": 0.35},
        "sweep_a": {"seeds": [1, 2, 3]},
        "sweep_b": {"seeds": [1, 2, 3]},
        "running": {"seeds": [1, 2, 3]},
        "abl": {"seeds": [1, 2, 3]},
    },
    "statistics": {"equivalence_margin": 1.0},
    "claims": [
        {"claim": "fancy does not work", "chapter": "x", "expect": "lower",
         "arms": [{"experiment": "fancy", "versus": "base_p5", "prior_versus": "base"}]},
        {"claim": "the sweep hurts", "chapter": "y", "expect": "lower", "claimed": [-2, -1],
         "arms": [["sweep_a", "base"], ["sweep_b", "base"]]},
        {"claim": "the sweep and a running one", "chapter": "y", "expect": "lower",
         "arms": [["sweep_a", "base"], ["running", "base"]]},
        {"claim": "not run at all", "chapter": "y", "expect": "higher",
         "arms": [["never", "base"]]},
        {"claim": "the base reaches 41 %", "chapter": "z", "expect": "equal", "best_epoch": 2,
         "arms": [{"experiment": "base", "value": 0.41}]},
    ],
    "tables": {"demo_ablation": ["base", "abl"]},
}

METRICS = pd.concat([
    runs("base", [0.40, 0.42, 0.41]), runs("base_p5", [0.40, 0.41, 0.41]),
    runs("fancy", [0.44, 0.45, 0.45]),                 # clearly higher: refutes "lower"
    runs("sweep_a", [0.30, 0.31, 0.30]),               # clearly lower
    runs("sweep_b", [0.41, 0.40, 0.43]),               # within noise
    runs("running", [0.2, 0.2]),                       # 2 of 3 seeds: pending
    runs("abl", [0.35, 0.37, 0.36]),
], ignore_index=True)


@pytest.fixture
def book():
    return book_verdicts(METRICS, REGISTRY)


def test_verdicts_follow_the_pooled_estimate(book):
    fancy, sweep, running, never, value = book.claims
    assert fancy.verdict == "refuted"
    # the pooled sweep: per seed (a + b) / 2 − base = −4.5, −6.5, −4.5 points: far beyond the
    # claimed −1 to −2, with the claimed sign
    assert sweep.pooled.comparison.differences == pytest.approx((-4.5, -6.5, -4.5))
    assert sweep.verdict == "refuted in size"
    assert running.verdict == PENDING and running.pooled is None
    assert never.verdict == PENDING
    assert value.arms[0].comparison.differences == pytest.approx((-1.0, 1.0, 0.0))


def test_one_benjamini_hochberg_family_over_claims_and_ablations(book):
    results = [r for r in book.all_results() if r.comparison is not None]
    distinct = {(r.comparison.seeds, r.comparison.differences): r.comparison.p_value
                for r in results}
    q_of = dict(zip(distinct, benjamini_hochberg(list(distinct.values()))))
    for result in results:
        assert result.q == pytest.approx(q_of[(result.comparison.seeds,
                                               result.comparison.differences)])
    assert len(book.ablations["demo_ablation"]) == 1
    # a single-arm claim's pooled estimate is its arm: one test, one q
    fancy = book.claims[0]
    assert fancy.pooled.q == fancy.arms[0].q


def test_missing_and_unfinished_runs_are_pending_not_errors(book):
    running = book.claims[2].arms[1]
    assert running.comparison is None
    assert "`running` 2 of 3 runs" in running.status
    assert "`never` not run yet" in book.claims[3].arms[0].status


def test_the_prior_reports_own_difference_is_the_claimed_size(book):
    # the prior report compared fancy (35 %) with its baseline (38 %), not with base_p5
    arm = book.claims[0].arms[0]
    assert arm.prior_difference == pytest.approx(-3.0)
    assert arm.claimed == pytest.approx((-3.0, -3.0))


def test_parse_arm_accepts_pairs_mappings_values_and_seeds():
    assert parse_arm(["a", "b"], "lower").expect == "lower"
    arm = parse_arm({"experiment": "a", "versus": "a", "metric": "val_acc1",
                     "versus_metric": "test_acc1", "expect": "higher"}, "lower")
    assert (arm.metric, arm.versus_metric, arm.expect) == ("val_acc1", "test_acc1", "higher")
    assert arm.label() == "`a`: val_acc1 − test_acc1"
    assert parse_arm({"experiment": "a", "value": 0.5}, "equal").experiments() == ["a"]
    assert parse_arm({"seeds": [42, 123]}, "higher").experiments() == []


def test_claims_csv_has_a_row_per_arm_and_per_claim(book):
    frame = claims_frame(book)
    assert list(frame.columns[:8]) == ["claim", "arm", "n_seeds", "diff", "lo", "hi", "q",
                                       "verdict"]
    assert (frame["arm"] == "pooled").sum() == len(REGISTRY["claims"])
    sweep = frame[frame["claim"] == "the sweep hurts"]
    assert list(sweep["arm"]) == ["sweep_a − base", "sweep_b − base", "pooled"]
    assert set(frame["verdict"]) <= {"supported", "refuted", "refuted in size", "equivalent",
                                     "inconclusive", PENDING}


def test_claims_markdown_lists_every_claim_with_its_verdict(book):
    text = claims_markdown(book, METRICS)
    assert text.startswith("```{list-table}")
    for claim in REGISTRY["claims"]:
        assert claim["claim"] in text
    assert "**pending**" in text and "**refuted**" in text and "q = " in text
    assert "recorded best epochs 4, 4, 4" in text
    assert claims_markdown(book, METRICS, chapter="x").count("* - ") == 2  # header + one claim
    assert claims_markdown(book, METRICS, chapter="nothing") == "No claims in this group.\n"


def test_list_table_turns_lines_into_bullets():
    text = list_table([["a", "one\ntwo", "v"]], ["h1", "h2", "h3"], [1, 2, 1])
    assert "  - - one\n    - two" in text


def test_seeds_needed_for_a_narrow_enough_interval():
    from nextloc.report.stats import from_differences
    from nextloc.report.verdicts import seeds_needed

    # sd 1: t(0.975, n-1) / sqrt(n) <= 1.5 first holds at n = 5 (2.776 / 2.236 = 1.24;
    # n = 4: 3.182 / 2 = 1.59)
    wide = from_differences("a", "b", pd.Series([-1.0, 0.0, 1.0], index=[1, 2, 3]))
    assert seeds_needed(wide) == 5
    # sd 10: never narrow enough, so the most seeds
    assert seeds_needed(from_differences("a", "b", pd.Series([-10.0, 0.0, 10.0],
                                                             index=[1, 2, 3]))) == 10
