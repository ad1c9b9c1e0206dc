"""Search workers on one Optuna study (SQLite in tmp_path): two processes lose and duplicate no
trial, workers starting together never claim the same queued trial, a killed search continues, a
complete one trains nothing, pruning stops weak sampled trials, and a real (tiny) training runs
through the same path on validation only. Most tests train through a fake `_train_one_seed` that
logs each call, inherited by forked workers."""
from __future__ import annotations

import collections
import json
import multiprocessing
import os
import signal
import time

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from project_tools import registry_file

import nextloc.core.paths
import nextloc.search.run
import nextloc.training.loop
from nextloc.search import study as studies
from nextloc.experiments.registry import best_point
from nextloc.search.run import run_search

FORK = multiprocessing.get_context("fork")
SPACE = {"lr": [0.001, 0.002, 0.005], "model.dim": [8, 16, 32],
         "model.features": [["user"], ["user", "time"]]}
POINTS = [{"lr": 0.001, "model.dim": 8, "model.features": ["user"]},
          {"lr": 0.003, "model.dim": 8}]  # lr outside the space, features left to the base
REGISTRY = {"experiments": {}, "searches": {
    "mixed": {"seed": 0, "seeds": [1, 2], "trials": 8, "base": {"model": "pointer"},
              "space": SPACE, "points": POINTS, "pruner": None},
    "pruned": {"seed": 0, "seeds": [1], "trials": 10, "base": {"model": "pointer"},
               "space": SPACE, "pruner": {"percentile": 50, "startup_trials": 2,
                                          "warmup_epochs": 1}},
    "done": {"seed": 0, "trials": 2, "base": {"model": "pointer"},
             "space": {"lr": [0.001, 0.002, 0.005]}},
}}


@pytest.fixture
def search(tmp_path, monkeypatch):
    """A registry in tmp_path; returns (storage URL, the training log)."""
    path = registry_file(tmp_path)
    path.write_text(yaml.safe_dump(REGISTRY))
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", path.parent)
    monkeypatch.setattr(nextloc.core.paths, "SEARCH_DIR", tmp_path / "results" / "search")
    monkeypatch.setattr(nextloc.core.paths, "RUN_SCRATCH", tmp_path / "runs")
    monkeypatch.setattr(nextloc.search.run, "POLL_SECONDS", 0.2)
    log = tmp_path / "trained.log"
    monkeypatch.setattr(nextloc.search.run, "_train_one_seed", fake_training(log))
    return f"sqlite:///{tmp_path / 'study.db'}", log


def score(point: dict) -> float:
    return 0.3 + 10 * point.get("lr", 0.001) + point.get("model.dim", 0) / 1000


def fake_training(log, epoch_seconds: float = 0.02, epochs: int = 3):
    """Stands in for one seed's training: logs the call, reports each epoch, returns scores."""
    def train_one_seed(base, point, seed, on_epoch, data):
        with open(log, "a") as out:
            out.write(json.dumps({"trial": studies.key(point), "seed": seed}) + "\n")
        for epoch in range(1, epochs + 1):
            time.sleep(epoch_seconds)
            on_epoch({"epoch": epoch, "val_acc1": score(point) * epoch / epochs})
        return {"seed": seed, "n_params": 10, "best_epoch": epochs,
                "val_acc1": score(point) + seed / 1000, "val_mrr": score(point),
                "train_seconds": epochs * epoch_seconds}
    return train_one_seed


def trained(log) -> collections.Counter:
    lines = log.read_text().splitlines() if log.is_file() else []
    return collections.Counter(json.loads(line)["trial"] for line in lines)


def finished_keys(storage: str, name: str) -> list[str]:
    # through open_storage: a worker may be creating the database's tables right now
    study = optuna.load_study(study_name=name, storage=studies.open_storage(storage))
    return [t.user_attrs["trial"] for t in study.get_trials(states=studies.DONE)]


@pytest.mark.slow
def test_two_workers_share_one_study_and_lose_or_repeat_no_trial(search):
    storage, log = search
    workers = [FORK.Process(target=run_search, args=("mixed",),
                            kwargs={"jobs": 1, "storage": storage}) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    done = finished_keys(storage, "mixed")
    assert len(done) == len(set(done)) == 8                       # none repeated, none lost
    assert {studies.key(point) for point in POINTS} <= set(done)  # the listed points ran
    assert trained(log) == {k: 2 for k in done}                   # each point once per seed
    table = pd.read_csv(nextloc.core.paths.SEARCH_DIR / "mixed.csv")
    assert sorted(table["trial"]) == sorted(done) and set(table["state"]) == {"COMPLETE"}
    assert table.loc[table["trial"] == studies.key(POINTS[1]), "lr"].item() == 0.003


def claim_queued_trials(url: str, start: multiprocessing.Barrier, claimed, count: int) -> None:
    study = optuna.load_study(study_name="queue", storage=studies.open_storage(url))
    start.wait()
    with pytest.warns(UserWarning, match="Heartbeat"):  # ask() outside optimize(): no heartbeat
        numbers = [study.ask().number for _ in range(count)]
    claimed.put(numbers)


@pytest.mark.slow
def test_workers_starting_together_never_claim_the_same_queued_trial(tmp_path):
    # SQLite has no row locks: without BEGIN IMMEDIATE (studies.serialize_transactions) four
    # workers claiming 40 queued trials at once took the same trial twice in every try (29-35
    # distinct trials of 40).
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=studies.open_storage(url))
    for value in range(40):
        study.enqueue_trial({"x": value})
    workers, start, claimed = 4, FORK.Barrier(4), FORK.Queue()
    processes = [FORK.Process(target=claim_queued_trials, args=(url, start, claimed, 10))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    numbers = [number for _ in processes for number in claimed.get(timeout=120)]
    for process in processes:
        process.join(timeout=60)
    assert sorted(numbers) == list(range(40))


def kill_a_worker_mid_search(storage: str, log, monkeypatch) -> set:
    """Start search 'mixed' in a worker process on ``storage``, kill it (SIGKILL) inside its third
    trial, and return the keys of the trials it finished."""
    monkeypatch.setattr(nextloc.search.run, "_train_one_seed", fake_training(log, 0.3))
    worker = FORK.Process(target=run_search, args=("mixed",), kwargs={"jobs": 1,
                                                                       "storage": storage})
    worker.start()
    deadline = time.time() + 60
    while not (_exists(storage) and len(finished_keys(storage, "mixed")) >= 2):
        assert time.time() < deadline and worker.is_alive()
        time.sleep(0.1)
    time.sleep(0.5)                            # well inside the third trial
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    return set(finished_keys(storage, "mixed"))


@pytest.mark.slow
def test_a_killed_search_continues_where_it_stopped(search, monkeypatch):
    storage, log = search
    monkeypatch.setattr(studies, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(studies, "GRACE_SECONDS", 2)
    before = kill_a_worker_mid_search(storage, log, monkeypatch)
    run_search("mixed", jobs=2, storage=storage)
    done = finished_keys(storage, "mixed")
    assert len(done) == len(set(done)) == 8 and before <= set(done)
    counts = trained(log)
    assert all(counts[k] == 2 for k in before)            # finished trials did not run again
    assert sum(counts[k] > 2 for k in done) <= 1          # only the killed one ran twice


def _exists(storage: str) -> bool:
    try:
        optuna.load_study(study_name="mixed", storage=studies.open_storage(storage))
        return True
    except KeyError:
        return False


def test_a_complete_search_trains_nothing_and_keeps_its_table(search, monkeypatch):
    storage, log = search
    folder = nextloc.core.paths.SEARCH_DIR
    folder.mkdir(parents=True)
    rows = [{"trial": studies.key({"lr": lr}), "lr": lr, "n_params": 10, "best_epoch": 3,
             "val_acc1": acc, "val_mrr": 0.5, "train_seconds": 1.0}
            for lr, acc in [(0.001, 0.4), (0.005, 0.45)]]
    pd.DataFrame(rows).to_csv(folder / "done.csv", index=False)
    committed = (folder / "done.csv").read_bytes()
    for _ in range(2):  # a new study, then the existing one
        run_search("done", jobs=2, storage=storage)
    assert not log.exists()
    assert (folder / "done.csv").read_bytes() == committed
    assert best_point("done")["lr"] == 0.005


def test_pruning_stops_weak_sampled_trials_and_their_rows_have_no_score(search):
    storage, log = search
    table = run_search("pruned", jobs=1, storage=storage)
    assert len(table) == 10 and (table["state"] == "PRUNED").any()
    pruned = table[table["state"] == "PRUNED"]
    assert pruned["val_acc1"].isna().all()
    complete = table[table["state"] == "COMPLETE"]
    assert best_point("pruned")["lr"] == json.loads(
        complete.loc[complete["val_acc1"].idxmax(), "trial"])["lr"]


def test_a_real_tiny_search_trains_on_validation_only(search, tiny_data_dir, monkeypatch):
    storage, _ = search
    monkeypatch.setattr(nextloc.search.run, "_train_one_seed", TRAIN_ONE_SEED)
    monkeypatch.setenv("NEXTLOC_DATA", str(tiny_data_dir))
    registry = {"experiments": {}, "searches": {"tiny": {
        "seed": 0, "seeds": [1, 2], "trials": 2, "pruner": None,
        "base": {"model": "pointer", "epochs": 2, "batch_size": 64, "model.dim": 16,
                 "model.feedforward": 32},
        "space": {"lr": [0.001, 0.003]}}}}
    (nextloc.core.paths.REGISTRY_DIR / "main.yaml").write_text(yaml.safe_dump(registry))
    seen = []
    evaluate = nextloc.training.loop.evaluate
    monkeypatch.setattr(nextloc.training.loop, "evaluate",
                        lambda model, split, *a, **k: seen.append(len(split)) or
                        evaluate(model, split, *a, **k))
    table = run_search("tiny", jobs=1, storage=storage)
    from nextloc.data.split import load_dataset
    data = load_dataset(tiny_data_dir)
    assert len(data.splits["validation"]) != len(data.splits["test"])
    assert set(seen) == {len(data.splits["validation"])}   # never the test split
    assert len(table) == 2 and table["val_acc1"].between(0, 1).all()
    assert (table["seeds"] == 2).all() and (table["best_epoch"] >= 1).all()


TRAIN_ONE_SEED = nextloc.search.run._train_one_seed
