"""The Optuna side of a search: where its study lives, its space as Optuna distributions, and
the trials, each keyed by its point (``trial``: the JSON of the hyperparameters it tried).

A point is the suggested parameters (the names of the search's ``space``) plus ``fixed`` ones (a
listed point's settings outside the space, kept in the trial's user attributes). Every trial
records its key when it starts, so workers that share a study can tell when two trials are the
same point: the one with the lowest number runs, the others end as duplicates
(``FAIL`` with ``duplicate_of``) without training.
"""
from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path

import optuna
import pandas as pd
import sqlalchemy
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from nextloc.core import paths
from nextloc.core.errors import ConfigError

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE = (TrialState.RUNNING, TrialState.WAITING)
# A worker records a heartbeat every HEARTBEAT_SECONDS; a running trial whose worker has been
# silent for GRACE_SECONDS (killed, machine lost) fails and is queued again with its point.
HEARTBEAT_SECONDS, GRACE_SECONDS = 20, 60
ROW_COLUMNS = ["seeds", "n_params", "best_epoch", "val_acc1", "val_mrr", "train_seconds"]

optuna.logging.set_verbosity(optuna.logging.WARNING)
# A trial that steps aside for another one (nextloc.search.run.SkipTrial) is no warning; real
# errors of a trial still end the worker with their traceback.
logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def safe_url(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return repr(url[:80])


def check_storage_url(url: str) -> bool:
    """Whether ``url`` is SQLite, after refusing URLs that cannot hold a shared, lasting study."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigError(f"--storage {safe_url(url)}: not a database URL; write e.g. "
                          f"sqlite:///runs/search/NAME.db or postgresql+psycopg2://user@host/db."
                          ) from None
    if not parsed.drivername.startswith("sqlite"):
        return False
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise ConfigError(f"--storage {url}: an in-memory SQLite database is private to one "
                          f"process and lost at its end; the workers need a file.")
    folder = Path(database).parent
    if not folder.is_dir():
        raise ConfigError(f"--storage {url}: folder {folder} does not exist; create it first.")
    return True


def key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


def default_storage(name: str) -> str:
    """A SQLite file per search under the git-ignored run scratch."""
    path = paths.RUN_SCRATCH / "search" / f"{name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def journal_path(url: str) -> Path | None:
    """The file of an Optuna journal storage: ``journal:PATH``, or a path ending in ``.journal``
    or ``.log``; None for a database URL."""
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    return Path(url) if url.endswith((".journal", ".log")) and "://" not in url else None


def open_journal(path: Path) -> optuna.storages.JournalStorage:
    """Optuna's journal file storage: one append-only file, locked while written, that workers
    on machines with a shared file system (NFS) use without a database server. It has no
    heartbeats (:func:`nextloc.search.fail_trials_of_ended_workers` stands in for them)."""
    if not path.parent.is_dir():
        raise ConfigError(f"--storage journal:{path}: folder {path.parent} does not exist; create "
                          f"it first.")
    try:
        backend = optuna.storages.journal.JournalFileBackend(str(path))  # makes a new file
        with open(path, "rb") as journal:  # checked now, not at the first trial's write
            for line in journal:
                if line.endswith(b"\n"):  # a line without one may be being written
                    json.loads(line)
        return optuna.storages.JournalStorage(backend)
    except (OSError, ValueError) as err:  # a folder, no permission, a file that is no journal
        raise ConfigError(f"--storage journal:{path}: cannot open it as an Optuna journal file "
                          f"({str(err).splitlines()[0][:160]}).") from None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """A journal file (:func:`open_journal`), or any Optuna RDB URL (sqlite, postgresql,
    mysql), with heartbeats, so that the trials of a killed worker are noticed and run again. A
    URL that cannot work is one ConfigError (a missing SQLite folder was 125 lines of
    SQLAlchemy traceback)."""
    journal = journal_path(url)
    if journal is not None:
        return open_journal(journal)
    sqlite = check_storage_url(url)
    kwargs = {"connect_args": {"timeout": 60}} if sqlite else {}
    for attempt in range(1, 6):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())
            if sqlite:
                serialize_transactions(storage.engine)
            return storage
        except ImportError as err:
            raise ConfigError(f"no database driver for {url} ({str(err).rstrip('.')}). For "
                              f"PostgreSQL, `pip install psycopg2-binary` and write "
                              f"postgresql+psycopg2://... (or `pip install 'psycopg[binary]'` "
                              f"for postgresql://).")
        except sqlalchemy.exc.ArgumentError as err:  # garbage://: no such kind of database
            raise ConfigError(f"--storage {safe_url(url)}: {str(err).splitlines()[0][:120]}; "
                              f"use sqlite:///FILE, postgresql+psycopg2://... or mysql://...."
                              ) from None
        except sqlalchemy.exc.DBAPIError as err:
            # Workers starting together on a new database race to make it (locked, "table
            # already exists", a unique constraint): worth retrying. A file that is no database
            # never becomes one.
            if attempt == 5 or "not a database" in str(err):
                first = str(err.orig if err.orig is not None else err).splitlines()[0]
                raise ConfigError(f"--storage {safe_url(url)}: cannot open the study's "
                                  f"database ({first[:160]}).") from None
            time.sleep(attempt)  # workers starting together on a new database race to make it


def serialize_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Make every transaction on a SQLite file take the write lock when it begins.

    Optuna claims a queued trial by reading it as WAITING and writing RUNNING, which a database
    with row locks (PostgreSQL, MySQL) makes atomic with SELECT ... FOR UPDATE. SQLite has no
    row locks, and Python's sqlite3 only begins a transaction at the first write, so two workers
    could both read the trial as WAITING and both train it (seen in a two-worker search: the
    second worker failed at the end, unable to complete a trial that was already complete).
    With ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite) the read and the claim are one
    locked step; the workers wait for each other's short transactions, up to the timeout.
    """
    @sqlalchemy.event.listens_for(engine, "connect")
    def no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the storage was made lack the hooks


def encode(value):
    """Optuna's categorical choices are scalars; lists and mappings travel as JSON."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else key(value)


def distribution(name: str, values) -> BaseDistribution:
    """``[a, b, ...]``: a categorical choice; ``{low, high, log?, step?}``: a range (integers
    when low and high are integers and log is not set, else floats)."""
    if isinstance(values, list):
        choices = [encode(v) for v in values]
        if not values or len(set(map(key, values))) != len(values):
            raise ConfigError(f"search space '{name}' must list distinct values; got {values}")
        return CategoricalDistribution(choices)
    if isinstance(values, dict) and {"low", "high"} <= set(values):
        low, high = values["low"], values["high"]
        if all(isinstance(v, int) for v in (low, high)) and not values.get("log"):
            return IntDistribution(low, high, step=values.get("step", 1))
        return FloatDistribution(low, high, log=values.get("log", False), step=values.get("step"))
    raise ConfigError(f"search space '{name}': a list of values or {{low, high}}; got {values}")


def space_distributions(space: dict) -> dict[str, BaseDistribution]:
    return {name: distribution(name, values) for name, values in space.items()}


def grid_size(space: dict[str, BaseDistribution]) -> float:
    if not all(isinstance(d, CategoricalDistribution) for d in space.values()):
        return math.inf
    return math.prod(len(d.choices) for d in space.values())


def decode(values, choice):
    """The value of the space's list that Optuna's ``choice`` stands for."""
    if not isinstance(values, list):
        return choice
    return {encode(v): v for v in values}.get(choice, choice)


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution):
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def holds(dist: BaseDistribution, value) -> bool:
    """Whether ``value`` is one of the distribution's values (else a point keeps it fixed)."""
    if isinstance(dist, CategoricalDistribution):
        return encode(value) in dist.choices
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and dist.low <= value <= dist.high)


def split_point(point: dict, space: dict[str, BaseDistribution]) -> tuple[dict, dict]:
    """(Optuna params, fixed settings) of a point: a value the space cannot hold stays fixed."""
    params = {name: encode(value) for name, value in point.items()
              if name in space and holds(space[name], value)}
    return params, {name: value for name, value in point.items() if name not in params}


def enqueue_points(study: optuna.Study, points: list[dict], space: dict) -> None:
    """Queue the listed points that no trial has taken (a failed one does not count)."""
    taken = {t.user_attrs.get("trial") for t in study.get_trials(deepcopy=False)
             if t.state != TrialState.FAIL}
    for point in points:
        if key(point) not in taken:
            params, fixed = split_point(point, space)
            study.enqueue_trial(params, user_attrs={"trial": key(point), "fixed": fixed,
                                                    "enqueued": True})
            taken.add(key(point))


def import_table(study: optuna.Study, table: pd.DataFrame, space: dict) -> None:
    """Add the finished rows of a committed trials table that the study lacks, as finished
    trials: a search that is complete in the repository trains nothing again."""
    known = {t.user_attrs.get("trial") for t in study.get_trials(deepcopy=False,
                                                                 states=DONE)}
    for _, row in table.iterrows():
        state = TrialState[row["state"]] if isinstance(row.get("state"), str) else None
        if row["trial"] in known or state not in (None, *DONE):
            continue
        params, fixed = split_point(json.loads(row["trial"]), space)
        values = {c: (None if pd.isna(row.get(c)) else float(row[c])) for c in ROW_COLUMNS}
        complete = state in (None, TrialState.COMPLETE)
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE if complete else TrialState.PRUNED,
            value=values["val_acc1"] if complete else None, params=params,
            distributions={name: space[name] for name in params},
            user_attrs={"trial": row["trial"], "fixed": fixed, "row": values,
                        "imported": True}))
        known.add(row["trial"])


def slot_keys(trials: list, states=DONE + ACTIVE) -> set[str]:
    """The distinct points of the trials in ``states`` (a trial that has not recorded its point
    yet counts on its own)."""
    return {t.user_attrs.get("trial", f"#{t.number}") for t in trials if t.state in states}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per point (its first finished trial), in trial order; pruned trials keep their
    point and the seeds they finished, without scores."""
    rows, seen = [], set()
    trials = sorted(study.get_trials(deepcopy=False, states=DONE),
                    key=lambda t: (t.state != TrialState.COMPLETE, t.number))
    for trial in trials:
        point_key = trial.user_attrs["trial"]
        if point_key in seen:
            continue
        seen.add(point_key)
        scores = trial.user_attrs.get("row") or {"seeds": len(trial.user_attrs.get("runs", []))}
        rows.append({"trial": point_key, **json.loads(point_key),
                     **{c: scores.get(c) for c in ROW_COLUMNS},
                     "state": trial.state.name, "number": trial.number})
    return pd.DataFrame(rows).sort_values("number", kind="stable") if rows else pd.DataFrame()
