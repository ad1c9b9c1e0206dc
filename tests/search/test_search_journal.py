"""Optuna's journal file storage (issue 25 item 4): ``nextloc search --storage journal:PATH``
(or a path ending in .journal or .log) for machines that share a file system but no database.
Two worker processes on one journal file lose and repeat no trial; a killed worker's trial
runs again; a journal that cannot be opened is one clear line."""
from __future__ import annotations

import socket
import subprocess

import optuna
import psutil
import pytest
from optuna.trial import TrialState

import nextloc.core.paths
import nextloc.search.run
from nextloc.search import study as studies
from nextloc.cli import main
from project_tools import check_clean_failure
from test_search_workers import (FORK, POINTS, finished_keys,
                                 kill_a_worker_mid_search,
                                 run_search, search, trained)  # noqa: F401 - a fixture


@pytest.mark.parametrize("form", ["journal:{}", "{}"], ids=["journal:PATH", "PATH.journal"])
def test_two_workers_share_one_journal_file_and_the_trials_add_up(search, tmp_path,  # noqa: F811
                                                                  form):
    _, log = search
    storage = form.format(tmp_path / "study.journal")
    workers = [FORK.Process(target=run_search, args=("mixed",),
                            kwargs={"jobs": 1, "storage": storage}) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert isinstance(studies.open_storage(storage), studies.optuna.storages.JournalStorage)
    done = finished_keys(storage, "mixed")
    assert len(done) == len(set(done)) == 8                       # none repeated, none lost
    assert {studies.key(point) for point in POINTS} <= set(done)  # the listed points ran
    assert trained(log) == {k: 2 for k in done}                   # each point once per seed
    assert (nextloc.core.paths.SEARCH_DIR / "mixed.csv").is_file()


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: f"journal:{tmp}/missing/study.journal", "folder .*missing does not exist"),
    (lambda tmp: f"journal:{tmp}", "cannot open it as an Optuna journal file"),
    (lambda tmp: (tmp / "bad.journal").write_text("not a journal\n") and f"{tmp}/bad.journal",
     "cannot open it as an Optuna journal file"),
], ids=["missing folder", "a folder", "not a journal"])
def test_a_journal_that_cannot_be_opened_is_one_clear_line(search, tmp_path, capsys,  # noqa: F811
                                                           make, expected):
    code = main(["search", "mixed", "--jobs", "1", "--storage", make(tmp_path)])
    out, err = capsys.readouterr()
    check_clean_failure(code, out, err, expected)


@pytest.mark.slow
def test_a_killed_worker_s_trial_runs_again(search, tmp_path, monkeypatch):  # noqa: F811
    """A journal has no heartbeats: the trial of a worker killed on this machine would stay
    running for ever, and the next search wait for it for ever."""
    _, log = search
    storage = f"journal:{tmp_path / 'study.journal'}"
    before = kill_a_worker_mid_search(storage, log, monkeypatch)
    rerun = FORK.Process(target=run_search, args=("mixed",), kwargs={"jobs": 2,
                                                                      "storage": storage})
    rerun.start()
    rerun.join(timeout=120)
    if rerun.exitcode is None:  # waiting for ever: end it and its pool's workers
        for process in [*psutil.Process(rerun.pid).children(recursive=True), rerun]:
            process.kill()
    assert rerun.exitcode == 0                 # not waiting for the killed worker's trial
    done = finished_keys(storage, "mixed")
    assert len(done) == len(set(done)) == 8 and before <= set(done)
    assert sum(trained(log)[k] > 2 for k in done) == 1  # the killed one ran again


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # work() does so
def test_two_waiting_workers_fail_an_ended_worker_s_trial_once(tmp_path, monkeypatch):
    """Both saw the trial running; the second one's fail is too late and queues nothing."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    study = optuna.create_study(study_name="s", storage=studies.open_storage(
        f"journal:{tmp_path / 's.journal'}"))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("worker", f"{socket.gethostname()}:{ended.pid}")
    seen_running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    nextloc.search.run.fail_trials_of_ended_workers(study)
    monkeypatch.setattr(study, "get_trials", lambda **_: seen_running)
    nextloc.search.run.fail_trials_of_ended_workers(study)
    monkeypatch.undo()
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
