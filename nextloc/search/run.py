"""Hyperparameter search on the validation split with Optuna (the test split is never evaluated).

A search of ``experiments/*.yaml`` (``searches:``) is one Optuna study of the same name. Its
``space`` maps settings to a list of values (a categorical choice) or ``{low, high, log}``
(a range); ``trials`` is how many points to try, drawn by a TPE sampler (``seed``); ``points``
lists explicit points, queued as fixed trials before any sampled one. A trial trains every seed
of ``seeds`` (default ``[seed]``) and scores the mean validation Acc@1; each epoch's validation
Acc@1 goes to a pruner (``pruner:``, default: the median of the other trials at the same seed
and epoch, after ``warmup_epochs``; ``pruner: null`` switches it off) that stops hopeless
sampled trials early. Listed points are never pruned.

A search may start from another search's best point (``base_search``); the best trial of such a
child search replaces the base's best point only if it scores higher on validation
(``nextloc.experiments.registry.best_point``).

The study lives in a SQLite file under ``runs/search/`` by default, or in any Optuna storage
(``--storage postgresql://...``, or ``--storage journal:PATH``, a journal file on a shared
file system, :func:`nextloc.search.study.open_journal`): several workers, on one machine (``--jobs``)
or many, share it, and a killed search continues where it stopped. The trials table
``results/search/<name>.csv`` is what the repository keeps and what the experiments read; it is
rewritten from the study after every trial, and its finished rows are loaded into a new study,
so that a complete search trains nothing again.
"""
from __future__ import annotations

import json
import os
import socket
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import optuna
import pandas as pd
import psutil
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from nextloc.search import study as studies
from nextloc.core.errors import ConfigError
from nextloc.data.dataset_names import check_dataset_folder
from nextloc.core.paths import atomic_write
from nextloc.experiments.registry import (best_point, fill_placeholders, search_placeholders,
                                          search_spec, train_config)
from nextloc.experiments.results import read_search_table, search_table_path

STEP_STRIDE = 1000   # a trial reports seed number k, epoch e at step k * STEP_STRIDE + e
POLL_SECONDS = 10    # how often an idle worker looks at the study while others finish


class SkipTrial(Exception):
    """A trial that must not train: its point is taken, or the search has all its trials."""


@dataclass
class Plan:
    """A search of the registry, resolved: what every trial shares and what it varies."""
    name: str
    base: dict
    seeds: list[int]
    values: dict        # the space as written (to decode Optuna's choices)
    space: dict         # the space as Optuna distributions
    points: list[dict]
    budget: int         # finished trials (complete or pruned) that complete the search
    seed: int
    pruner: dict | None
    data: str | None = None  # the report's data folder given with --data; None: the default


def make_plan(name: str, data: str | None = None) -> Plan:
    spec = search_spec(name)
    base = {**(best_point(spec["base_search"]) if "base_search" in spec else {}), **spec["base"]}
    values, points = spec.get("space", {}), spec.get("points", [])
    space = studies.space_distributions(values)
    if values and "trials" not in spec or not (values or points):
        raise ConfigError(f"search '{name}': give a space and a number of trials, or points")
    budget = max(len(points), min(spec.get("trials", 0), studies.grid_size(space)))
    pruner = spec.get("pruner", {"percentile": 50, "startup_trials": 5, "warmup_epochs": 5})
    if "dataset" in spec:  # a folder beside the report's data, like an experiment's
        data = str(check_dataset_folder(name, spec["dataset"], data, kind="search"))
    return Plan(name, base, spec.get("seeds", [spec["seed"]]), values, space, points, budget,
                spec["seed"], pruner, data)


def make_pruner(plan: Plan) -> optuna.pruners.BasePruner:
    if not plan.pruner:
        return optuna.pruners.NopPruner()
    return optuna.pruners.PercentilePruner(plan.pruner.get("percentile", 50),
                                           n_startup_trials=plan.pruner.get("startup_trials", 5))


def open_study(plan: Plan, storage: str, sampler_seed: int) -> optuna.Study:
    """The search's study (created on first use); it refuses a base point that changed."""
    study = optuna.create_study(
        storage=studies.open_storage(storage), study_name=plan.name, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed), pruner=make_pruner(plan),
        load_if_exists=True)
    base, stored = studies.key(plan.base), study.user_attrs.get("base")
    if stored is None:
        study.set_user_attr("base", base)
    elif stored != base:
        raise ConfigError(f"search '{plan.name}': its study ({storage}) was run on base settings "
                          f"{stored}, now {base}. Start a new study: remove its file or pass "
                          f"another --storage.")
    return study


def _train_one_seed(base: dict, point: dict, seed: int, on_epoch, data: str | None) -> dict:
    from nextloc.data.split import load_dataset
    from nextloc.training.loop import train

    settings = {key: fill_placeholders(value, search_placeholders(seed))
                for key, value in {**base, **point}.items()}
    result = train(train_config(settings, seed=seed, num_threads=1), load_dataset(data),
                   progress=False, evaluate_test=False, on_epoch=on_epoch)
    return {"seed": seed, "n_params": result.n_params, "best_epoch": result.best_epoch,
            "val_acc1": result.val["acc1"], "val_mrr": result.val["mrr"],
            "train_seconds": result.train_seconds}


def trial_row(point: dict, per_seed: list[dict]) -> dict:
    """One row of the search table: the point and its scores averaged over the seeds."""
    mean = lambda name: sum(r[name] for r in per_seed) / len(per_seed)  # noqa: E731
    return {"trial": studies.key(point), **point, "seeds": len(per_seed),
            "n_params": per_seed[0]["n_params"], "best_epoch": mean("best_epoch"),
            "val_acc1": mean("val_acc1"), "val_mrr": mean("val_mrr"),
            "train_seconds": round(mean("train_seconds"), 1)}


def trial_point(trial: optuna.Trial, plan: Plan) -> dict:
    """The trial's point, recorded on the trial as its key. A listed point is exactly what it
    lists (a setting it leaves out keeps the base value); the others are sampled."""
    if trial.user_attrs.get("enqueued"):
        point = json.loads(trial.user_attrs["trial"])
        for name in set(plan.space) & set(point) - set(trial.user_attrs.get("fixed", {})):
            studies.suggest(trial, name, plan.space[name])  # the queued value, for the sampler
        return point
    point = {name: studies.decode(plan.values[name], studies.suggest(trial, name, dist))
             for name, dist in plan.space.items()}
    trial.set_user_attr("trial", studies.key(point))
    return point


def check_slot(trial: optuna.Trial, plan: Plan) -> None:
    """Raise SkipTrial when an earlier trial holds the same point (the lowest number runs)
    or when the earlier trials already fill the search."""
    earlier = [t for t in trial.study.get_trials(deepcopy=False)
               if t.number < trial.number and t.state != TrialState.FAIL]
    same = [t.number for t in earlier if t.user_attrs.get("trial") == trial.user_attrs["trial"]]
    if same:
        trial.set_user_attr("duplicate_of", same[0])
        raise SkipTrial(f"the same point as trial {same[0]}")
    if not (plan.space or trial.user_attrs.get("enqueued")):
        raise SkipTrial("every listed point is taken")
    if len(studies.slot_keys(earlier)) >= plan.budget:
        raise SkipTrial(f"the search has its {plan.budget} trials")


def epoch_reporter(trial: optuna.Trial, plan: Plan, position: int):
    """The per-epoch callback of one seed's training: report, and prune a sampled trial."""
    prune = bool(plan.pruner) and not trial.user_attrs.get("enqueued")

    def report(row: dict) -> None:
        if "val_acc1" not in row:
            return
        trial.report(row["val_acc1"], position * STEP_STRIDE + row["epoch"])
        if prune and row["epoch"] > plan.pruner.get("warmup_epochs", 5) and trial.should_prune():
            raise optuna.TrialPruned(f"seed {plan.seeds[position]}, epoch {row['epoch']}")
    return report


def run_trial(trial: optuna.Trial, plan: Plan) -> float:
    """The objective: train the point on every seed, on validation only; the mean Acc@1."""
    point = trial_point(trial, plan)
    check_slot(trial, plan)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    runs = []
    for position, seed in enumerate(plan.seeds):
        runs.append(_train_one_seed(plan.base, point, seed, epoch_reporter(trial, plan, position),
                                    plan.data))
        trial.set_user_attr("runs", runs)
    row = trial_row(point, runs)
    trial.set_user_attr("row", {c: row[c] for c in studies.ROW_COLUMNS})
    return row["val_acc1"]


def write_table(name: str, study: optuna.Study) -> pd.DataFrame:
    table = studies.trials_table(study)
    if not table.empty:
        atomic_write(search_table_path(name), lambda tmp: table.to_csv(tmp, index=False))
    return table


def work(name: str, storage: str, sampler_seed: int, data: str | None = None) -> int:
    """One worker: run trials of the shared study until it has all of them; wait for other
    workers' last trials (a dead worker's trial comes back to the queue). Returns the number of
    trials this worker ran."""
    plan = make_plan(name, data)
    study, ran = open_study(plan, storage, sampler_seed), 0
    while True:
        trials = study.get_trials(deepcopy=False)
        if len(studies.slot_keys(trials, studies.DONE)) >= plan.budget:
            return ran
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or (plan.space and len(studies.slot_keys(trials)) < plan.budget):
            study.optimize(partial(run_trial, plan=plan), n_trials=1, catch=(SkipTrial,))
            ran += 1
            write_table(name, study)
        elif any(t.state == TrialState.RUNNING for t in trials):
            time.sleep(POLL_SECONDS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # a database's heartbeats
                if studies.journal_path(storage) is not None:  # a journal has none
                    fail_trials_of_ended_workers(study)
        else:
            return ran  # listed points whose trials failed: run the search again to retry


def fail_trials_of_ended_workers(study: optuna.Study) -> None:
    """What heartbeats do for a database, for a journal file, which has none: a running trial
    whose worker was a process of this machine that has ended fails, and its point is queued
    again. (A worker that ended on another machine cannot be seen from here.)"""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = trial.user_attrs.get("worker", "").rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid)):
            try:
                study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # another waiting worker failed it first, and queued it again
            RetryHeartbeatStaleTrialCallback()(study, trial)


def prepare_study(name: str, storage: str) -> optuna.Study:
    """Create the study if needed, load the committed trials table into it and queue the
    listed points no trial has taken; done once before the workers start."""
    plan = make_plan(name)
    study = open_study(plan, storage, plan.seed)
    path = search_table_path(name)
    if path.is_file():
        studies.import_table(study, read_search_table(path), plan.space)
    studies.enqueue_points(study, plan.points, plan.space)
    return study


def sampler_seeds(study: optuna.Study, seed: int, jobs: int, shared: bool) -> list[int]:
    """One TPE seed per local worker: ``seed``, ``seed + 1``, ... for a search this process
    runs alone. A process that joins a study in a shared storage, or one whose trials another
    worker is running, adds its process id: with the same seeds as the others its workers
    would propose the very points the others proposed first (each then skipped as a duplicate)."""
    joined = shared or any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    return [seed + index + (os.getpid() if joined else 0) for index in range(jobs)]


def run_search(name: str, jobs: int = 2, storage: str | None = None,
               data: Path | None = None) -> pd.DataFrame:
    """Run (or continue, or join) the search ``name`` with ``jobs`` local worker processes, on
    the report's data (``data``: its folder given with ``--data``); the trials table, best
    first."""
    data = None if data is None else str(data)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer; got {jobs!r}.")
    search_spec(name)  # the registry checked before the default storage's folder is made
    storage = storage or studies.default_storage(name)
    study = prepare_study(name, storage)
    seeds = sampler_seeds(study, make_plan(name).seed, jobs,
                          shared=storage != studies.default_storage(name))
    if jobs == 1:
        ran = work(name, storage, seeds[0], data)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            ran = sum(pool.map(work, [name] * jobs, [storage] * jobs, seeds, [data] * jobs))
    if ran or not search_table_path(name).is_file():
        return write_table(name, study).sort_values("val_acc1", ascending=False)
    return read_search_table(search_table_path(name)).sort_values("val_acc1", ascending=False)
