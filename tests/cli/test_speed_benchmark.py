"""The speed benchmark's arithmetic (the measurements themselves are not timed in tests)."""
from __future__ import annotations

from nextloc.speed import round_speedups, speedup, summarize


def test_an_epoch_is_the_steps_times_a_batch_plus_one_validation_pass():
    raw = {"train_samples": 100, "batch_size": 32, "step": [0.02, 0.01],
           "validation": [1.0, 0.5], "validation_samples": 500}
    got = summarize(raw, {"epochs_per_run": 10})
    assert got["steps_per_epoch"] == 4
    assert got["wall"]["epoch_seconds"] == 1.08 and got["wall"]["run_seconds"] == 10.8
    assert got["cpu"]["epoch_seconds"] == 0.54 and got["cpu"]["inference_ms_per_1000"] == 1000.0


def test_the_speedup_is_reference_over_current_and_absent_without_a_reference():
    current = {"wall": {"run_seconds": 10.0}, "cpu": {"run_seconds": 4.0}}
    reference = {"wall": {"run_seconds": 25.0}, "cpu": {"run_seconds": 6.0}}
    assert speedup(reference, current) == {"wall": 2.5, "cpu": 1.5}
    assert speedup(None, current) is None


def test_each_round_compares_the_two_trees_measured_in_it():
    def raw(step: float) -> dict:
        return {"train_samples": 64, "batch_size": 32, "step": [step, step],
                "validation": [0.0, 0.0], "validation_samples": 10}
    runs = {"reference": [{"pointer": raw(0.4)}, {"pointer": raw(0.6)}, {}],
            "current": [{"pointer": raw(0.2)}, {"pointer": raw(0.4)}, {}]}
    assert round_speedups("pointer", runs, {"epochs_per_run": 3}) == [2.0, 1.5]
