"""Where the points come from (issue 22, item 2): the gain over the baseline split into groups of
test targets, on tiny hand-made predictions, and the sentence written without the data."""
from __future__ import annotations

import pandas as pd
import pytest

import nextloc.report.points_source
from nextloc.report.points_source import (ALL, contributions, groups, points_frame,
                                          write_points_source)

# Five test samples: the first two are the unseen class, samples 0, 2, 3 have their target in the
# history. Correct (1) or not (0) per run:
UNSEEN = [True, True, False, False, False]
IN_HISTORY = [True, False, True, True, False]
RUNS = {("headline", 1): [1, 0, 1, 1, 0], ("headline", 2): [1, 1, 1, 0, 0],
        ("baseline", 1): [0, 0, 1, 0, 1], ("baseline", 2): [0, 0, 0, 1, 0],
        ("markov", 7): [1, 0, 1, 0, 0]}


def samples() -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unseen": UNSEEN, "in_history": IN_HISTORY,
                                    "experiment": name, "seed": seed, "run": f"{name}/{seed}",
                                    "correct": [bool(c) for c in correct]})
                      for (name, seed), correct in RUNS.items()], ignore_index=True)


def test_contributions_add_up_to_the_total_gain_by_hand():
    frame = samples()
    table = contributions(frame, groups(frame, 7)["target's class"], "headline")
    # unseen (2 of 5): headline seeds 1/2 and 2/2 -> 0.75, baseline 0 -> 0.4 * 0.75 = 30 points
    # known (3 of 5): headline 2/3 and 1/3 -> 0.5, baseline 2/3 and 1/3 -> 0.5 -> 0 points
    # total: headline 3/5 and 3/5 -> 0.6, baseline 2/5 and 1/5 -> 0.3 -> 30 points
    assert list(table.index) == ["unseen place", "known place", ALL]
    assert table["share"].tolist() == pytest.approx([0.4, 0.6, 1.0])
    assert table["points"].tolist() == pytest.approx([30.0, 0.0, 30.0])
    assert table.loc["unseen place", "headline"] == pytest.approx(0.75)


@pytest.mark.parametrize("split", ["target's class", "history"])
@pytest.mark.parametrize("experiment", ["headline", "markov"])
def test_each_splits_contributions_add_up_to_the_gain_in_mean_acc1(split, experiment):
    frame = samples()
    table = contributions(frame, groups(frame, 7)[split], experiment)
    mean = {name: frame[frame["experiment"] == name].groupby("seed")["correct"].mean().mean()
            for name in (experiment, "baseline")}
    gain = 100 * (mean[experiment] - mean["baseline"])
    assert table.loc[ALL, "points"] == pytest.approx(gain)
    assert table.drop(ALL)["points"].sum() == pytest.approx(gain)


def test_the_frame_has_each_group_once_and_the_total_last():
    frame = points_frame(samples(), "headline", 7)
    assert list(frame["group"]) == ["unseen place", "known place", "in the 7-day history",
                                    "not in the 7-day history", ALL]
    # markov (one seed): unseen 1/2 -> 0.4 * 0.5 = 20 points; known 1/3 - 0.5 -> -10 points
    assert frame["markov points"].tolist()[:2] == pytest.approx([20.0, -10.0])
    assert frame["markov points"].iloc[-1] == pytest.approx(10.0)


def test_without_the_data_a_sentence_and_a_figure_say_why(project, monkeypatch):
    monkeypatch.setattr(nextloc.report.points_source, "test_data", lambda: None)
    for name in ("baseline", "markov", "h"):
        (project / "results" / "runs" / name / "seed_1").mkdir(parents=True)
        (project / "results" / "runs" / name / "seed_1" / "test_predictions.csv.gz").touch()
    table, figure, why = write_points_source({"headline": {"train_only": "h"}})
    assert table.read_text() == "The gain is not split here: the data is not available here.\n"
    assert figure.name == "fig_points_source.svg" and figure.is_relative_to(project)
    assert "the data is not available here" in figure.read_text()
    assert "not broken down here" in why.read_text()


def test_without_the_runs_the_sentence_names_them(project, monkeypatch):
    monkeypatch.setattr(nextloc.report.points_source, "test_data", lambda: ("split", 7))
    table, _, why = write_points_source({"headline": {"train_only": "h"}})
    assert "the saved runs of `baseline`, `markov`, `h` are missing" in table.read_text()


def test_why_it_works_states_the_shares_and_the_counting_rule():
    from nextloc.report.points_source import why_text

    registry = {"experiments": {"baseline": {"prior_report_acc1": 0.3795}}}
    text = why_text(points_frame(samples(), "headline", 7), "headline", registry)
    # in the history: samples 0, 2, 3 of 5; unseen: 2 of 5; markov 2 of 5; headline 3 of 5
    assert text.startswith("60.00 % of the test targets are a place of the person's recent")
    assert "40.00 % are the unseen-location class" in text
    assert "`markov`, which has no parameters, already reaches 40.00 %, above the prior " \
           "report's 37.95 %" in text
    assert text.rstrip().endswith("reaches 60.00 %.")
