"""One notebook execution in a process of its own, ``python -m nextloc.experiments.notebook_job
SPEC`` with SPEC a JSON object (template, output, title, parameters, failed, error_file, and
parent: the pid of the process that started the job). ``nextloc run`` starts one per run, so that
Ctrl-C can stop a run, kernel included, at any moment.

The executed notebook is written to a temporary file beside its path and renamed onto it only
after every cell ran (:func:`nextloc.core.paths.atomic_write`). A notebook whose cell raised is kept
at ``failed`` for reading, and its error (type and message) written to ``error_file``. SIGTERM or
SIGINT stops the kernel and removes the temporary file; so does the end of the process that
started the job, even when it ends by ``kill -9`` while this job is still starting.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import papermill
import psutil

from nextloc.core import paths
from nextloc.experiments.tidy import tidy_file


def execute(template: str, output: Path, title: str, parameters: dict, failed: Path) -> None:
    """Execute a notebook template with papermill, a title cell first so that each executed
    notebook has its own heading in the book; then hide papermill's cells (and, on a run page,
    code and checkpoint paths) from the book (:func:`nextloc.experiments.tidy.tidy_notebook`)."""
    notebook = nbformat.read(paths.NOTEBOOKS / f"{template}.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(title))

    def run(tmp: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / f"{template}.ipynb"
            nbformat.write(notebook, source)
            try:
                papermill.execute_notebook(str(source), str(tmp), parameters=parameters,
                                           kernel_name="python3", progress_bar=False,
                                           cwd=str(paths.NOTEBOOKS))
            except papermill.PapermillExecutionError:
                failed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tmp, failed)
                raise
        tidy_file(tmp, run_page)

    run_page = ((parameters["experiment"], int(parameters["seed"]), bool(parameters.get("quick")))
                if template == "train" and "seed" in parameters else None)

    paths.atomic_write(output, run)


def stop_kernels() -> None:
    """End every process this job started (the kernel), politely first."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        child.kill()


def on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def watch_parent(parent: int) -> None:
    """Stop this job (as SIGTERM would) once the process that started it, ``parent``, is gone.

    ``parent`` comes from the spec, not from ``os.getppid()`` here: a parent killed while this
    process imported papermill has already handed it to init, whose pid would then be watched."""
    if os.getppid() != parent:
        raise SystemExit(128 + signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def error_summary(err: BaseException) -> str:
    if isinstance(err, papermill.PapermillExecutionError):
        return f"{err.ename}: {err.evalue}"
    return f"{type(err).__name__}: {err}"


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        watch_parent(spec["parent"])
        execute(spec["template"], Path(spec["output"]), spec["title"], spec["parameters"],
                Path(spec["failed"]))
        return 0
    except SystemExit as stop:
        return int(stop.code or 1)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which names the run
        Path(spec["error_file"]).write_text(error_summary(err))
        return 1
    finally:
        stop_kernels()


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: a stopped kernel's client may block in it
