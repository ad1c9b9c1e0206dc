"""Claims of the prior report: parsing, pending runs, verdicts and the rendered table."""
from __future__ import annotations

import pandas as pd
import pytest

from nextloc.claims import (claimed_size, claims_markdown, evaluate_claims, list_table,
                            parse_arm)
from nextloc.stats import PENDING


def runs(name: str, accuracies: list[float], seeds=(1, 2, 3)) -> pd.DataFrame:
    return pd.DataFrame({"experiment": name, "seed": list(seeds)[:len(accuracies)],
                         "test_acc1": accuracies, "val_acc1": accuracies, "n_params": 100})


REGISTRY = {
    "experiments": {
        "base": {"seeds": [1, 2, 3], "prior_report_acc1": 0.38},
        "base_p5": {"seeds": [1, 2, 3]},
        "fancy": {"seeds": [1, 2, 3], "prior_report_acc1": 0.35},
        "sweep_a": {"seeds": [1, 2, 3]},
        "sweep_b": {"seeds": [1, 2, 3]},
        "running": {"seeds": [1, 2, 3]},
    },
    "claims": [
        {"claim": "fancy does not work", "chapter": "x", "expect": "lower",
         "arms": [{"experiment": "fancy", "versus": "base_p5", "prior_versus": "base"}]},
        {"claim": "the sweep hurts", "chapter": "y", "expect": "lower", "claimed": [1, 2],
         "arms": [["sweep_a", "base"], ["sweep_b", "base"], ["running", "base"]]},
        {"claim": "not run at all", "chapter": "y", "expect": "higher",
         "arms": [["never", "base"]]},
    ],
}

METRICS = pd.concat([
    runs("base", [0.40, 0.42, 0.41]), runs("base_p5", [0.40, 0.41, 0.41]),
    runs("fancy", [0.44, 0.45, 0.45]),                 # clearly higher: refutes "lower"
    runs("sweep_a", [0.30, 0.31, 0.30]),               # clearly lower: supports
    runs("sweep_b", [0.41, 0.40, 0.43]),               # within noise
    runs("running", [0.2, 0.2]),                       # 2 of 3 seeds: pending
], ignore_index=True)


@pytest.fixture
def results():
    return evaluate_claims(METRICS, REGISTRY)


def test_verdicts_follow_the_intervals(results):
    fancy, sweep, never = results
    assert fancy.verdict == "refuted"
    assert [arm.verdict for arm in sweep.arms] == ["supported", "not distinguishable", PENDING]
    assert sweep.verdict == "partly supported"
    assert never.verdict == PENDING


def test_missing_and_unfinished_runs_are_pending_not_errors(results):
    running = results[1].arms[2]
    assert running.comparison is None
    assert "`running` 2 of 3 runs" in running.status
    assert "`never` not run yet" in results[2].arms[0].status


def test_the_prior_reports_own_difference_uses_its_comparison(results):
    # the prior report compared fancy (35 %) with its baseline (38 %), not with base_p5
    assert results[0].arms[0].prior_difference == pytest.approx(-3.0)


def test_claimed_size_counts_intervals_against_the_promise(results):
    text = claimed_size(results[1].claim, results[1].arms)
    assert text.startswith("promised +1 to +2 points")
    # sweep_a's interval lies below +1; sweep_b's is wide enough to reach it
    assert text.endswith("intervals reaching that range: 1 of 2, entirely below it: 1")


def test_parse_arm_accepts_pairs_and_mappings():
    assert parse_arm(["a", "b"], "lower").expect == "lower"
    arm = parse_arm({"experiment": "a", "versus": "a", "metric": "val_acc1",
                     "versus_metric": "test_acc1", "expect": "higher"}, "lower")
    assert (arm.metric, arm.versus_metric, arm.expect) == ("val_acc1", "test_acc1", "higher")
    assert arm.label() == "`a`: val_acc1 − test_acc1"


def test_claims_markdown_lists_every_claim_with_its_verdict(results):
    text = claims_markdown(results)
    assert text.startswith("```{list-table}")
    for claim in REGISTRY["claims"]:
        assert claim["claim"] in text
    assert "**pending**" in text and "**refuted**" in text
    assert "(1 of 3 tests pending)" in text
    assert claims_markdown(results, chapter="x").count("* - ") == 2   # header + one claim
    assert claims_markdown(results, chapter="nothing") == "No claims in this group.\n"


def test_list_table_turns_lines_into_bullets():
    text = list_table([["a", "one\ntwo", "v"]], ["h1", "h2", "h3"], [1, 2, 1])
    assert "  - - one\n    - two" in text
