"""The papermill runner's scheduling: one pool for all runs, dependencies respected."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future

import pytest
import yaml

from project_tools import registry_file

import nextloc.core.paths
import nextloc.experiments.runner
from nextloc.core.errors import RunError
from nextloc.experiments.runner import SignalsAtSafePoints, dependencies, run_all

MEMBERS = ["{checkpoints}/x/seed_{seed}.safetensors", "{checkpoints}/y/seed_{next_seed}.safetensors"]


def test_dependencies_are_the_epochs_source_and_every_checkpoint_named(project):
    seeds = [42, 123, 7]
    experiments = {
        "x": {"model": "baseline", "seeds": seeds}, "y": {"model": "baseline", "seeds": seeds},
        "plain": {"model": "baseline", "seeds": seeds},
        "refit": {"model": "baseline", "refit": True, "epochs_from": "x", "seeds": seeds},
        "pair_over_budget": {"model": "ensemble", "model.members": MEMBERS, "seeds": seeds},
        "distilled": {"model": "pointer_ensemble", "seeds": seeds, "model.distill": 0.5,
                      "model.teacher": ["{checkpoints}/y/seed_42.safetensors"]}}
    registry_file(project).write_text(yaml.safe_dump({"experiments": experiments}))
    found = {name: dependencies(name, spec) for name, spec in experiments.items()}
    assert found == {"x": set(), "y": set(), "plain": set(), "refit": {"x"},
                     "pair_over_budget": {"x", "y"}, "distilled": {"y"}}


@pytest.fixture
def recorded_runs(project, monkeypatch) -> list[tuple[str, str, float]]:
    """Notebook execution replaced by a short sleep that records (event, output name, time)."""
    events, lock = [], threading.Lock()

    def fake_execute(template, output, title, parameters, jobs=None):
        name = f"{output.parent.name}/{output.stem}"
        with lock:
            events.append(("start", name, time.perf_counter()))
        time.sleep(0.2)
        with lock:
            events.append(("end", name, time.perf_counter()))

    monkeypatch.setattr(nextloc.experiments.runner, "execute", fake_execute)
    monkeypatch.setattr(nextloc.experiments.runner, "is_up_to_date", lambda *args: False)
    monkeypatch.setattr(nextloc.experiments.runner, "check_runs", lambda *args: None)
    path = registry_file(project)
    path.write_text(yaml.safe_dump({"experiments": {
        "x": {"model": "baseline", "seeds": [1, 2, 3]},
        "y": {"model": "baseline", "seeds": [4]},
        "pair": {"model": "ensemble", "model.members": MEMBERS[:1], "seeds": [1]}}},
        sort_keys=False))  # registry order is dependency order
    return events


def test_runs_of_different_experiments_share_the_pool(recorded_runs):
    run_all(["x", "y"], quick=True, jobs=2)
    starts = {name: t for event, name, t in recorded_runs if event == "start"}
    ends = {name: t for event, name, t in recorded_runs if event == "end"}
    # x's third seed and y's only seed run side by side: y does not wait for all of x.
    assert starts["y/seed_4"] < ends["x/seed_3"]


def test_a_run_starts_after_the_runs_it_reads(recorded_runs):
    run_all(["x", "pair"], quick=True, jobs=2)
    starts = {name: t for event, name, t in recorded_runs if event == "start"}
    ends = {name: t for event, name, t in recorded_runs if event == "end"}
    assert starts["pair/seed_1"] >= max(ends[f"x/seed_{seed}"] for seed in (1, 2, 3))


def test_a_failed_run_raises_its_error_and_cancels_the_queued_ones(recorded_runs, monkeypatch):
    # Before, the runs cancelled by the failure were waited for, and the runner hung forever.
    def fails_first_seed(template, output, title, parameters, jobs=None):
        recorded_runs.append(("start", f"{output.parent.name}/{output.stem}", 0.0))
        if parameters["seed"] == 1:
            raise RunError("x/seed_1 failed: ValueError: boom")
        time.sleep(0.2)

    monkeypatch.setattr(nextloc.experiments.runner, "execute", fails_first_seed)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(run_or_error(["x", "y"])),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the runner hung after a failed run"
    assert isinstance(outcome[0], RunError) and "seed_1" in str(outcome[0])
    started = {name for _, name, _ in recorded_runs}
    assert "x/seed_1" in started and "y/seed_4" not in started  # nothing new after the failure


def run_or_error(names: list[str]):
    try:
        run_all(names, quick=True, jobs=1)
    except RunError as error:
        return error
    return None


def test_a_signal_only_flags_and_the_wait_raises_it():
    finished, pending = Future(), Future()
    finished.set_result(7)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with SignalsAtSafePoints() as signals:
            os.kill(os.getpid(), signal.SIGTERM)  # would end the test process if not caught
            time.sleep(0.1)
            assert signals.result(finished) == 7  # a finished run still gives its result
            signals.result(pending)                # a wait raises
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back


def test_a_signal_after_the_last_wait_still_interrupts():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with SignalsAtSafePoints():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
    assert signal.getsignal(signal.SIGINT) is before
