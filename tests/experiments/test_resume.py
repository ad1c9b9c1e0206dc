"""Resuming (issue 9, defects 2 and 7): a run's stamp is written last, after its notebook finished
(renamed from a temporary file) and its row was recorded; a failed or interrupted run keeps no
stamp, and the next ``nextloc run`` re-runs exactly those runs.

The interrupt tests start ``python -m nextloc run`` for real, with a notebook that waits inside
its kernel, and send SIGINT or SIGTERM; they cost a few kernel starts (~15 s each)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from project_tools import (GOOD_ROW, copy_package, fake_notebook, make_project, populate,
                           rebase_paths, run_cli)

import nextloc.experiments.run
import nextloc.experiments.runner
from nextloc.core import paths
from nextloc.core.errors import RunError
from nextloc.experiments.runner import is_up_to_date, run_one, stamp_path

X = {"model": "persistent", "seeds": [1]}


# --- the stamp comes last --------------------------------------------------------------------

def test_the_stamp_is_removed_first_and_written_after_the_notebook(project, monkeypatch):
    populate(project)
    stamp = stamp_path("x", 1, True)
    stamp.parent.mkdir(parents=True)
    stamp.write_text(json.dumps({"config_hash": "an old run", "quick": True}))
    stamp_seen = fake_notebook(project, monkeypatch)
    run_one("x", X, 1, quick=True)
    assert stamp_seen == [False]
    assert is_up_to_date("x", 1, quick=True)


def test_a_failed_notebook_leaves_no_stamp(project, monkeypatch):
    populate(project)
    fake_notebook(project, monkeypatch, fails=True)
    with pytest.raises(RunError):
        run_one("x", X, 1, quick=True)
    assert not stamp_path("x", 1, True).exists()
    assert not is_up_to_date("x", 1, quick=True)


def test_a_failed_metrics_write_leaves_no_stamp_and_the_row_comes_back(project, monkeypatch,
                                                                      tiny_data_dir):
    # Before issue 9, train_and_record_seed stamped the run before recording its row: a failed write
    # left a stamp, and every later `nextloc run` skipped the run without its row.
    populate(project)
    (project / "results" / "metrics.csv").unlink()
    monkeypatch.setenv("NEXTLOC_DATA", str(tiny_data_dir))

    def full_disk(row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nextloc.experiments.run, "record_metrics", full_disk)
    with pytest.raises(OSError):
        nextloc.experiments.run.train_and_record_seed("x", 1, quick=False, device="cpu")
    assert not stamp_path("x", 1, False).exists()
    assert not is_up_to_date("x", 1, quick=False)


def test_a_full_run_without_its_row_is_not_up_to_date(project, monkeypatch):
    populate(project)
    fake_notebook(project, monkeypatch)
    run_one("x", X, 1, quick=False)
    assert is_up_to_date("x", 1, quick=False)
    (project / "results" / "metrics.csv").write_text(",".join(GOOD_ROW) + "\n")  # row lost
    assert not is_up_to_date("x", 1, quick=False)


def test_an_unreadable_stamp_means_the_run_is_rerun(project, monkeypatch, capsys):
    populate(project)
    fake_notebook(project, monkeypatch)
    run_one("x", X, 1, quick=True)
    stamp_path("x", 1, True).write_bytes(b"\x00garbage")
    assert not is_up_to_date("x", 1, quick=True)
    assert "unreadable stamp" in capsys.readouterr().err


# --- real runs: a failing notebook, and interrupts -------------------------------------------

SLOW_NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "parameters", "outputs": [],
         "metadata": {"tags": ["parameters"]},
         "source": "experiment = 's'\nseed = 1\nquick = True\nnum_threads = None"},
        {"cell_type": "code", "execution_count": None, "id": "wait", "metadata": {},
         "outputs": [],
         "source": "import pathlib, time\n"
                   "with open('starts.log', 'a') as log:\n"
                   "    log.write(f'{seed}\\n')\n"
                   "while seed == 2 and pathlib.Path('hold').exists():\n"
                   "    time.sleep(0.2)"}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def real_project(tmp_path, tiny_data_dir):
    """A project with its own copy of nextloc: 's' (seeds 1, 2) runs a notebook that logs each
    start and holds seed 2 while the file notebooks/hold exists; 'pair' loads a corrupted
    checkpoint."""
    registry = {"experiments": {
        "s": {"model": "persistent", "notebook": "slow", "seeds": [1, 2]},
        "x": X,
        "pair": {"model": "ensemble", "model.members": ["runs/quick/checkpoints/bad.safetensors"],
                 "seeds": [1]}}}
    root = make_project(tmp_path / "project", registry, {"slow": SLOW_NOTEBOOK})
    copy_package(root)
    (root / "runs" / "quick" / "checkpoints").mkdir(parents=True)
    (root / "runs" / "quick" / "checkpoints" / "bad.safetensors").write_bytes(b"garbage")
    env = {"NEXTLOC_DATA": str(tiny_data_dir), "NEXTLOC_CACHE": str(tmp_path / "cache")}
    return root, env


@pytest.mark.slow
def test_a_quick_run_and_a_failing_run_for_real(real_project, monkeypatch):
    root, env = real_project
    failed = run_cli(root, "run", "x", "pair", "--quick", env=env)  # x runs, then pair fails
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "pair/seed_1 failed: ConfigError: " in failed.stderr
    assert "not a readable nextloc checkpoint" in failed.stderr
    rebase_paths(root, monkeypatch.setattr)
    monkeypatch.setenv("NEXTLOC_DATA", env["NEXTLOC_DATA"])  # stamps name the data they used
    assert is_up_to_date("x", 1, quick=True) and not is_up_to_date("pair", 1, quick=True)
    assert (paths.FAILED_RUNS / "pair" / "seed_1.ipynb").is_file()
    assert not paths.notebook_path("pair", 1, True).exists()
    assert not [p for p in (root / "runs" / "quick" / "book").rglob(".*")]  # no temporary file


def kernels_of(root) -> list[psutil.Process]:
    """Processes (kernels, notebook jobs) still working in the project."""
    found = []
    for process in psutil.process_iter(["cwd"]):
        try:
            if process.info["cwd"] and process.info["cwd"].startswith(str(root)):
                found.append(process)
        except psutil.Error:
            pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_keeps_no_stamp_and_is_rerun(real_project, monkeypatch, signum):
    root, env = real_project
    (root / "notebooks" / "hold").touch()
    starts = root / "notebooks" / "starts.log"
    process = subprocess.Popen([sys.executable, "-m", "nextloc", "run", "s", "--quick",
                                "--jobs", "1"], cwd=root, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(root), **env})
    try:
        deadline = time.monotonic() + 240
        while not (starts.is_file() and starts.read_text().split() == ["1", "2"]):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        process.send_signal(signum)  # seed 2 is inside its kernel, seed 1 finished
        out, err = process.communicate(timeout=60)
        leftovers = kernels_of(root)  # the job and its kernel must end before nextloc exits
    finally:  # whatever happened, leave no process behind
        process.kill()
        for leftover in kernels_of(root):
            leftover.kill()

    assert process.returncode == 130, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "interrupted. Stopped, with their kernels: s/seed_2" in err
    assert "re-runs exactly them" in err
    rebase_paths(root, monkeypatch.setattr)
    monkeypatch.setenv("NEXTLOC_DATA", env["NEXTLOC_DATA"])  # stamps name the data they used
    assert is_up_to_date("s", 1, quick=True) and not stamp_path("s", 2, True).exists()
    assert not paths.notebook_path("s", 2, True).exists()
    assert not [p for p in (root / "runs" / "quick" / "book").rglob(".*")]  # no temporary file
    assert leftovers == []
    if signum == signal.SIGTERM:  # one real re-run is enough; it costs a kernel start
        (root / "notebooks" / "hold").unlink()
        rerun = run_cli(root, "run", "s", "--quick", "--jobs", "1", env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert "s: 1 seed(s) up to date, skipped" in rerun.stdout + rerun.stderr
        assert starts.read_text().split() == ["1", "2", "2"]
        assert is_up_to_date("s", 2, quick=True)
