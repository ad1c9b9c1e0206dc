"""``kill -9`` of ``nextloc run`` (issue 23): SIGKILL cannot be caught, so ``nextloc run`` cannot
stop its notebook jobs itself; each job, and the kernel it started, must notice that its parent
is gone and end within seconds, not keep writing the run folder: whether the job was still
starting (importing papermill) or its kernel was running the notebook (a kernel start, ~15 s)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from test_resume import kernels_of, real_project  # noqa: F401 - a fixture


def notebook_jobs(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children()
            if "nextloc.experiments.notebook_job" in " ".join(p.cmdline())]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["job starting", "kernel running"])
def test_kill_9_of_nextloc_run_ends_its_notebook_job_and_kernel(real_project,  # noqa: F811
                                                                moment):
    root, env = real_project
    (root / "notebooks" / "hold").touch()  # the notebook waits in its kernel until removed
    starts = root / "notebooks" / "starts.log"
    process = subprocess.Popen([sys.executable, "-m", "nextloc", "run", "s", "--quick",
                                "--jobs", "1", "--seeds", "2"], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(root), **env})
    try:
        deadline = time.monotonic() + 240
        started = (lambda: notebook_jobs(process.pid)) if moment == "job starting" else \
            (lambda: starts.is_file() and starts.read_text().split() == ["2"])
        while not started():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while kernels_of(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = [p.cmdline()[:3] for p in kernels_of(root)]
    finally:  # whatever happened, leave no process behind
        process.kill()
        for leftover in kernels_of(root):
            leftover.kill()
    assert leftovers == []
    assert not list((root / "runs" / "quick" / "book").rglob("*.ipynb"))  # nor a temporary one
