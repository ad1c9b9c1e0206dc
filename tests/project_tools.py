"""Temporary projects for tests that run commands: a folder laid out like the repository (its own
experiments/main.yaml, results/, book/runs/, runs/), and three ways to run nextloc against it
without ever touching the repository's results:

- :func:`rebase_paths`: in this process, every project path of ``nextloc.core.paths`` (no other
  module holds one) moved under the temporary project;
- :func:`run_forked`: ``nextloc.cli.main(argv)`` in a forked child process with rebased paths, its
  stdout/stderr captured at the file-descriptor level and its exit code returned. The children
  fork from one server process that imported nextloc once, so each costs milliseconds instead of
  the ~3 s of CPU a fresh interpreter spends importing torch and pandas;
- :func:`run_cli`: ``python -m nextloc`` as a real subprocess on a copy of the package inside the
  project (for signals and notebook kernels, which inherit PYTHONPATH).
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

import nextloc.core.paths

REPOSITORY = nextloc.core.paths.PROJECT_ROOT
# A small project: a finished quick-to-check run of 'x' and a search table for 'tuned'.
GOOD_ROW = {"experiment": "x", "model": "persistent", "seed": 1, "n_params": 0, "best_epoch": 0,
            "val_acc1": 0.25, "test_acc1": 0.3, "test_acc5": 0.5, "test_acc10": 0.6,
            "test_mrr": 0.4, "test_ndcg10": 0.45, "test_f1": 0.2, "train_seconds": 0.0,
            "device": "cpu", "test_acc1_known": 0.35, "test_unseen_share": 0.2}
X = {"model": "persistent", "seeds": [1]}
REGISTRY = {"experiments": {"x": X, "tuned": {"model": "baseline", "search": "s", "seeds": [1]}},
            "searches": {"s": {"seed": 0, "trials": 1, "base": {"model": "baseline"},
                               "space": {"lr": [0.001]}}}}
SEARCH_CSV = 'trial,lr,seeds,n_params,best_epoch,val_acc1,val_mrr,train_seconds\n' \
             '"{""lr"": 0.001}",0.001,1,1000,1.0,0.3,0.4,1.0\n'
ROW_TEXT = ",".join(map(str, GOOD_ROW.values()))
PRELOAD = ["nextloc.cli", "nextloc.experiments.runner", "nextloc.report.build",
           "nextloc.search.run", "nextloc.data.split"]


def path_changes(root: Path) -> list[tuple[object, str, Path]]:
    """(module, attribute, new path) for every project path of ``nextloc.core.paths``: the one
    module that holds them (tests/test_structure.py checks that no other module copies one)."""
    return [(nextloc.core.paths, attribute, root / value.relative_to(REPOSITORY))
            for attribute, value in list(vars(nextloc.core.paths).items())
            if isinstance(value, Path) and value.is_relative_to(REPOSITORY)]


def rebase_paths(root: Path, setattr_=setattr) -> None:
    for module, attribute, path in path_changes(root):
        setattr_(module, attribute, path)


def registry_file(root: Path) -> Path:
    """The one registry file of a test project (the report's registry has one per chapter)."""
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    return root / "experiments" / "main.yaml"


def make_project(root: Path, registry: dict, notebooks: dict[str, dict] | None = None) -> Path:
    """A project folder with ``registry`` as its registry file, the real notebook templates (and
    ``notebooks``, name -> notebook JSON, beside them), and empty results/ and book/runs/."""
    (root / "notebooks").mkdir(parents=True)
    for template in (REPOSITORY / "notebooks").glob("*.ipynb"):
        shutil.copy(template, root / "notebooks")
    for name, notebook in (notebooks or {}).items():
        (root / "notebooks" / f"{name}.ipynb").write_text(json_dump(notebook))
    registry_file(root).write_text(yaml.safe_dump(registry, sort_keys=False))
    for folder in ("results/runs", "results/search", "book/runs", "runs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


def full_project(root):
    """A project with a finished run of x (row, run folder, notebook) and a search table."""
    return populate(make_project(root, REGISTRY))


def populate(root):
    registry_file(root).write_text(yaml.safe_dump(REGISTRY))
    pd.DataFrame([GOOD_ROW]).to_csv(root / "results" / "metrics.csv", index=False)
    (root / "results" / "runs" / "x" / "seed_1").mkdir(parents=True)
    (root / "results" / "runs" / "x" / "seed_1" / "metrics.json").write_text("{}")
    (root / "book" / "runs" / "x").mkdir(parents=True)
    (root / "book" / "runs" / "x" / "seed_1.ipynb").write_text("{}")
    (root / "results" / "search" / "s.csv").write_text(SEARCH_CSV)
    (root / "results" / "superseded" / "old").mkdir(parents=True)
    pd.DataFrame([{**GOOD_ROW, "seed": 9}]).to_csv(root / "results" / "superseded" / "old" /
                                                   "metrics.csv", index=False)
    return root


def copy_package(root: Path) -> None:
    shutil.copytree(REPOSITORY / "nextloc", root / "nextloc",
                    ignore=shutil.ignore_patterns("__pycache__"))


def json_dump(value) -> str:
    import json

    return json.dumps(value)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too), files with the hash of their
    bytes; the metrics table's empty, git-ignored lock file is no result and left out."""
    return {str(p.relative_to(folder)) + ("/" if p.is_dir() else ""):
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(folder.rglob("*")) if p.name != ".metrics.lock"}


# --- forked CLI ------------------------------------------------------------------------------

def _forked_main(argv: list[str], root: str, env: dict, out: str, err: str, fault: str) -> None:
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    rebase_paths(Path(root))
    if fault == "read-only results":
        deny_writes_under(Path(root) / "results")
    from nextloc.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def deny_writes_under(folder: Path) -> None:
    """Make creating, renaming or writing files under ``folder`` fail with EACCES, as a read-only
    folder does for a user who is not root (the tests may run as root, whom chmod does not stop).
    """
    import builtins
    import io
    import tempfile

    def inside(path) -> bool:
        return Path(os.fspath(path)).resolve().is_relative_to(folder.resolve())

    def deny(function, *positions):
        def wrapper(*args, **kwargs):
            if any(inside(args[i]) for i in positions if i < len(args)) or \
                    inside(kwargs.get("dir") or "/nonexistent"):
                raise PermissionError(13, "Permission denied", os.fspath(args[0] if args else
                                                                         kwargs["dir"]))
            return function(*args, **kwargs)
        return wrapper

    original_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") and inside(file):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return original_open(file, mode, *args, **kwargs)

    builtins.open = io.open = guarded_open
    os.replace, os.rename = deny(os.replace, 0, 1), deny(os.rename, 0, 1)
    os.mkdir = deny(os.mkdir, 0)
    tempfile.mkstemp, tempfile.mkdtemp = deny(tempfile.mkstemp), deny(tempfile.mkdtemp)


class ForkedCli:
    """Runs ``nextloc.cli.main`` in children forked from one preloaded server process."""

    def __init__(self):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)

    def __call__(self, root: Path, *argv: str, env: dict | None = None,
                 fault: str = "") -> tuple[int, str, str]:
        out, err = root / ".stdout", root / ".stderr"
        child = self.context.Process(target=_forked_main, args=(
            list(argv), str(root), env or {}, str(out), str(err), fault))
        child.start()
        child.join(timeout=300)
        if child.exitcode is None:
            child.kill()
            raise TimeoutError(f"nextloc {' '.join(argv)} did not finish")
        texts = out.read_text(), err.read_text()
        out.unlink()
        err.unlink()
        return child.exitcode, *texts


def run_cli(root: Path, *argv: str, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m nextloc ARGV`` in ``root``, on the copy of the package there."""
    return subprocess.run([sys.executable, "-m", "nextloc", *argv], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


# --- shared checks -----------------------------------------------------------------------------

def check_clean_failure(code: int, out: str, err: str, expected: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.replace("\r", "\n").splitlines()
             if line.startswith(("nextloc", "usage"))]
    assert len(lines) in (1, 2), err  # argparse adds a usage line
    message = err[err.index(lines[-1]):]
    assert len(message) < 600, message
    assert re.search(expected, message), message


def fake_notebook(project, monkeypatch, fails: bool = False) -> list[bool]:
    """Notebook execution replaced by one that writes the notebook (or fails), recording whether
    a stamp existed while it ran."""
    import nextloc.experiments.runner
    from nextloc.core.errors import RunError
    from nextloc.experiments.runner import stamp_path

    stamp_seen = []

    def execute(template, output, title, parameters, jobs=None):
        stamp_seen.append(stamp_path(parameters["experiment"], parameters["seed"],
                                     parameters["quick"]).exists())
        if fails:
            raise RunError("x/seed_1 failed: ValueError: boom")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("{}")

    monkeypatch.setattr(nextloc.experiments.runner, "execute", execute)
    return stamp_seen
