"""Run experiments as executed notebooks: one papermill run of ``notebooks/train.ipynb`` per
(experiment, seed), written into the book, skipped when its outputs are up to date.

Every requested experiment is checked before any kernel starts
(:mod:`nextloc.experiments.preflight`). Each notebook runs in a child process
(:mod:`nextloc.experiments.notebook_job`). A run's stamp, which marks it up to date, is removed when
the run starts and written last: after the notebook finished and was renamed into place, and (for a
full run) recorded its row in results/metrics.csv. Ctrl-C or SIGTERM stops the running kernels; the
runs that did not finish keep no stamp, and the next ``nextloc run`` re-runs exactly those.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from nextloc.core import paths
from nextloc.core.errors import ConfigError, Interrupted, NextlocError, RunError, shorten
from nextloc.experiments.preflight import check_runs, dependencies, run_order
from nextloc.experiments.project import Project
from nextloc.experiments.registry import config_hash, run_settings
from nextloc.experiments.results import read_metrics
from nextloc.experiments.run_inputs import inputs_match, run_inputs


def stamp_path(experiment: str, seed: int, quick: bool) -> Path:
    return paths.run_dir(experiment, seed, quick) / "stamp.json"


def read_stamp(path: Path) -> dict:
    """A run's stamp; an unreadable one counts as none (the run is re-run), with a note."""
    try:
        stamp = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        tqdm.write(f"{path}: unreadable stamp; its run is re-run.", file=sys.stderr)
        return {}
    return stamp if isinstance(stamp, dict) else {}


def is_up_to_date(experiment: str, seed: int, quick: bool,
                  project: Project | None = None) -> bool:
    project = project or Project()
    stamp = read_stamp(stamp_path(experiment, seed, quick))
    if not stamp or not paths.notebook_path(experiment, seed, quick).is_file():
        return False
    if stamp.get("config_hash") != config_hash(run_settings(experiment, seed, quick), seed):
        return False
    if not inputs_match(stamp, project.experiments[experiment], quick, project.data):
        return False
    if quick:
        return True
    metrics = read_metrics(dataset=None)
    return bool(((metrics["experiment"] == experiment) & (metrics["seed"] == seed)).any())


class Jobs:
    """The child processes of the running notebooks; :meth:`stop` ends them, kernels included,
    and lets no new one start."""

    def __init__(self):
        self.lock, self.running, self.stopping = threading.Lock(), {}, False

    def run(self, label: str, command: list[str], log: Path) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        with self.lock, open(log, "w") as output:
            if self.stopping:
                raise Interrupted(f"{label}: not started")
            # A session of its own: a terminal's Ctrl-C reaches this process only, which stops
            # the job; the job stops its kernel.
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            self.running[label] = process
        try:
            return process.wait()
        finally:
            with self.lock:
                del self.running[label]

    def stop(self) -> list[str]:
        with self.lock:
            self.stopping, running = True, dict(self.running)
        for process in running.values():
            process.terminate()
        for process in running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        return list(running)


def execute(template: str, output: Path, title: str, parameters: dict,
            jobs: Jobs | None = None) -> None:
    """Execute a notebook template in a child process; a RunError names its error."""
    label = f"{output.parent.name}/{output.stem}"
    failed = paths.FAILED_RUNS / output.parent.name / output.name
    error_file = failed.with_suffix(".error")
    error_file.unlink(missing_ok=True)
    spec = {"template": template, "output": str(output), "title": title,
            "parameters": parameters, "failed": str(failed), "error_file": str(error_file),
            "parent": os.getpid()}
    code = (jobs or Jobs()).run(label, [sys.executable, "-m", "nextloc.experiments.notebook_job",
                                        json.dumps(spec)], failed.with_suffix(".log"))
    if code == 0:
        failed.with_suffix(".log").unlink(missing_ok=True)
        return
    if jobs is not None and jobs.stopping:
        raise Interrupted(f"{label}: stopped")
    error = error_file.read_text() if error_file.is_file() else f"exit code {code}"
    raise RunError(f"{label} failed: {shorten(error, 300)}\n  its notebook, with the traceback: "
                   f"{failed if failed.is_file() else failed.with_suffix('.log')}")


def run_one(name: str, spec: dict, seed: int, quick: bool, jobs: Jobs | None = None,
            data: Path | None = None) -> None:
    """One run: its stamp goes first and comes back last, after the notebook finished.
    ``data``: the report's data folder given with ``--data`` (None: the default)."""
    expected = config_hash(run_settings(name, seed, quick), seed)
    inputs = run_inputs(spec, data)  # before the run: what it read, not what changed while it ran
    stamp = stamp_path(name, seed, quick)
    stamp.unlink(missing_ok=True)
    title = f"# `{name}`, seed {seed}\n\n{spec.get('description', '')}"
    execute(spec.get("notebook", "train"), paths.notebook_path(name, seed, quick), title,
            {"experiment": name, "seed": seed, "quick": quick, "num_threads": 1,
             "data": None if data is None else str(data)}, jobs=jobs)
    paths.atomic_write(stamp, lambda tmp: tmp.write_text(json.dumps(
        {"config_hash": expected, "quick": quick, "inputs": inputs})))


def run_all(names: list[str] | None = None, quick: bool = False, jobs: int = 2,
            seeds: list[int] | None = None, force: bool = False,
            project: Project | None = None) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer; got {shorten(repr(jobs), 40)}.")
    project = project or Project()
    experiments, analyses = project.experiments, project.registry.get("analyses") or {}
    names = names or list(experiments) + list(analyses)
    unknown = [n for n in names if n not in experiments and n not in analyses]
    if unknown:
        raise ConfigError(f"unknown experiment(s) {shorten(unknown, 100)}; the registry "
                          f"defines {shorten(sorted(experiments) + sorted(analyses), 200)}")
    selected = [n for n in experiments if n in names]
    selected = run_order(selected, experiments)  # each run after the runs it reads
    check_runs(selected, seeds, quick, project)  # before any kernel starts
    run_experiments(selected, project, quick, jobs, seeds, force)
    for name in [n for n in analyses if n in names]:
        spec, pool = analyses[name], Jobs()
        print(f"analysis notebook {name}")
        with StopOnInterrupt(pool, lambda: []):
            execute(spec.get("notebook", name), paths.notebook_path(name, None, quick),
                    f"# {spec['title']}", {"quick": quick}, jobs=pool)


def run_experiments(selected: list[str], project: Project, quick: bool, jobs: int,
                    seeds: list[int] | None, force: bool) -> None:
    """One pool for every run, so that a 3-seed experiment does not leave a core idle while its
    third seed trains; an experiment that needs earlier runs waits for just those. A failed run
    lets the running ones finish and starts no other."""
    pool, submitted = Jobs(), {}
    bar = tqdm(total=0, desc="runs", unit="run")
    with ThreadPoolExecutor(max_workers=jobs) as executor, \
            StopOnInterrupt(pool, lambda: queued(submitted, selected), executor), \
            SignalsAtSafePoints() as signals:
        try:
            # run_order put what a run reads before it, so it was submitted already.
            for name in selected:
                spec = project.experiments[name]
                for dependency in dependencies(name, spec):
                    for future in submitted.get(dependency, {}).values():
                        signals.result(future)  # re-raises the dependency's failure here
                todo = [s for s in (seeds or spec["seeds"])
                        if force or not is_up_to_date(name, s, quick, project)]
                if len(seeds or spec["seeds"]) > len(todo):
                    tqdm.write(f"{name}: {len(seeds or spec['seeds']) - len(todo)} seed(s) up "
                               f"to date, skipped")
                bar.total += len(todo)
                bar.refresh()
                submitted[name] = {seed: executor.submit(run_one, name, spec, seed, quick, pool,
                                                         project.data)
                                   for seed in todo}
                for future in submitted[name].values():
                    future.add_done_callback(lambda _: bar.update(1))
            for futures in submitted.values():
                for future in futures.values():
                    signals.result(future)
        except Exception:
            executor.shutdown(wait=False, cancel_futures=True)
            # Only the running ones: a future cancelled by the shutdown never counts as done
            # for ``wait``, which would then block forever.
            wait([f for futures in submitted.values() for f in futures.values()
                  if not f.cancelled()])
            raise
        finally:
            bar.close()


def queued(submitted: dict, selected: list[str]) -> list[str]:
    """Runs not started: cancelled in the pool, or of experiments not scheduled yet."""
    cancelled = [f"{name}/seed_{seed}" for name, futures in submitted.items()
                 for seed, future in futures.items() if future.cancelled()]
    return cancelled + [f"{name}/*" for name in selected if name not in submitted]


class SignalsAtSafePoints:
    """While active (in the main thread), Ctrl-C and SIGTERM only set a flag, and
    :meth:`result` raises KeyboardInterrupt while it waits. Raised wherever the main thread
    happens to be, the exception can land inside a future's or a progress bar's lock handling
    and leave that lock held, and a worker thread then waits for it forever."""

    def __init__(self):
        self.signalled, self.handlers = threading.Event(), {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.handlers = {number: signal.signal(number, self.flag)
                             for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def flag(self, signum, frame) -> None:
        self.signalled.set()

    def __exit__(self, kind, error, trace) -> bool:
        restore_signals(self.handlers)
        if kind is None and self.signalled.is_set():  # came after the last wait
            raise KeyboardInterrupt("signal")
        return False

    def result(self, future: Future):
        """``future.result()``, raising KeyboardInterrupt once a signal has come."""
        while not future.done():
            if self.signalled.is_set():
                raise KeyboardInterrupt("signal")
            wait([future], timeout=0.2)
        return future.result()


class StopOnInterrupt:
    """On Ctrl-C or SIGTERM: start nothing new, stop the running jobs and their kernels (further
    signals are ignored meanwhile), and raise Interrupted saying what was stopped."""

    def __init__(self, pool: Jobs, not_started, executor: ThreadPoolExecutor | None = None):
        self.pool, self.not_started, self.executor = pool, not_started, executor

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None or not issubclass(kind, KeyboardInterrupt):
            return False
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        handlers = ignore_signals()
        try:
            stopped = self.pool.stop()
        finally:
            restore_signals(handlers)
        waiting = self.not_started()
        raise Interrupted(
            f"interrupted. Stopped, with their kernels: {listing(stopped)}; not started: "
            f"{listing(waiting)}. These runs have no stamp, so the same `nextloc run` "
            f"re-runs exactly them.") from None


def listing(names: list[str]) -> str:
    return shorten(", ".join(names), 150) if names else "none"


def ignore_signals() -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}


def restore_signals(handlers: dict) -> None:
    for number, handler in handlers.items():
        signal.signal(number, handler)
