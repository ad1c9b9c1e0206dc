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


SCALING = {"options": {"shard_users": 4}, "runs": [
    {"users": users, "workers": 1, "shards": users // 4, "gps_points": 2000 * users,
     "staypoints": 40 * users, "seconds": 0.2 * users + 1.0, "peak_memory_mb": 250.0,
     "step_seconds": {"shards": 0.2 * users}} for users in (40, 400)]}
SAMPLE = {"runs": [{"gps_points": 100_000, "staypoints": 100}],
          "cpu_seconds_per_million_points": 36.0,
          "memory_fit_mb": {"per_million_points": 600.0}}


def test_sharded_table_and_the_projection_to_100_times_geolife():
    table = page.sharded_table(SCALING)
    assert table.loc[(400, 1), "GPS fixes"] == "800,000"
    assert table.loc[(40, 1), "peak memory MB"] == "250"
    found = page.projection(SCALING, SAMPLE, cores=64, machines=16)
    # 0.2 s per user of 2,000 fixes: 1e-4 s per fix, over 2.49e9 fixes on one core
    assert abs(found["one_core_hours"] - 1e-4 * 2.49e9 / 3600) < 1e-6
    # the global steps took 1 s at every size: no growth per staypoint
    assert abs(found["global_hours"]) < 1e-9
    assert abs(found["machine_hours"] - found["one_core_hours"] / 64) < 1e-6
    assert abs(found["cluster_hours"] - found["one_core_hours"] / 1024) < 1e-6
    assert found["staypoints"] == 2.49e9 / 1000 and found["users"] == 18_200
    assert abs(found["sample_machine_hours"] - 36.0 * 2490 / 64 / 3600) < 1e-6
    sentence = page.projection_sentence(found)
    assert "2.49 billion fixes of 18,200 users" in sentence and "64-core" in sentence
    assert "0.55 million fixes for 4 users" in sentence and "250 MB peak" in sentence
