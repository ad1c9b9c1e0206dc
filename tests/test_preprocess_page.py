"""The preprocessing chapter's tables and sentences (nextloc.report.preprocess_page) from hand-made
inputs: counts with separators, seconds and percentages written out, no column overwritten."""
from __future__ import annotations

from types import SimpleNamespace

from nextloc.report import preprocess_page as page

RUN = {"copies": 1, "gps_points": 164531, "staypoints": 250,
       "seconds": {"read": 6.162, "staypoints": 15.492}, "total_seconds": 26.798,
       "cpu_seconds": 4.938}


def test_command_line():
    assert (page.command_line("../raw", "out", {"min_days": 3, "min_history": 2})
            == "nextloc preprocess ../raw --out out \\\n    --min-days 3 \\\n    --min-history 2")


def test_step_table_counts_and_seconds():
    counts = {key: 1000 + i for i, (_, key, _) in enumerate(page.STEPS)}
    seconds = {step: 1.234 for _, _, step in page.STEPS if step}
    table = page.step_table(SimpleNamespace(counts=counts, seconds=seconds))
    assert table.loc["GPS fixes read", "count"] == "1,000"
    assert table.loc["users passing the quality filter", "seconds"] == "1.23"
    assert table.loc["locations used", "seconds"] == ""


def test_metrics_table_in_percent():
    split = {"acc1": 0.6, "acc5": 0.8, "acc10": 0.9, "mrr": 0.69312, "ndcg10": 0.735,
             "f1": 0.55, "n": 10.0}
    table = page.metrics_table({"validation": split, "test": split})
    assert table.loc["test", "Acc@1"] == "60.00 %"
    assert table.loc["test", "MRR"] == "69.31 %"
    assert table.loc["validation", "samples"] == "10"


def test_cost_table_keeps_the_staypoint_count_beside_the_step_seconds():
    table = page.cost_table({"runs": [RUN]})
    assert table.loc[1, "GPS fixes"] == "164,531"
    assert table.loc[1, "staypoints"] == "250"  # the count, not the staypoint step's seconds
    assert table.loc[1, "staypoints s"] == "15.49"


def test_cost_sentence_and_scaling_table():
    bench = {"cpu_seconds_per_million_points": 20.41, "seconds_per_million_points": 115.38,
             "machine": {"load_average_1min": 8.47, "cpus": 2},
             "memory_fit_mb": {"per_million_points": 602.14},
             "projection": {"gps_points": 24.9e6, "cpu_minutes": 8.5, "minutes": 48.0,
                            "memory_gb": 15.1}}
    sentence = page.cost_sentence(bench)
    assert "20.4 CPU s" in sentence and "24.9 million fixes" in sentence and "0.59 GB" in sentence
    row = {"users": 40, "places": 16000, "train_samples": 3480, "classes": 3600,
           "build_seconds": 0.051, "markov_cpu_seconds": 0.381, "pointer_params": 1157771,
           "pointer_epoch_cpu_seconds": 2.5, "pointer_ms_per_training_sample": 0.7}
    table = page.scaling_table({"rows": [row]})
    assert table.loc[(40, "16,000"), "pointer parameters"] == "1,157,771"
