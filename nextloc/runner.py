"""Run experiments as executed notebooks: one papermill run of ``notebooks/train.ipynb`` per
(experiment, seed), written into the book, skipped when its outputs are up to date."""
from __future__ import annotations

import json
import re
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill
from tqdm import tqdm

from nextloc.errors import ConfigError
from nextloc.paths import NOTEBOOKS, notebook_path, run_dir
from nextloc.registry import config_hash, load_registry, run_settings


def is_up_to_date(experiment: str, seed: int, quick: bool) -> bool:
    stamp = run_dir(experiment, seed, quick) / "stamp.json"
    if not stamp.is_file() or not notebook_path(experiment, seed, quick).is_file():
        return False
    expected = config_hash(run_settings(experiment, seed, quick), seed)
    return json.loads(stamp.read_text()).get("config_hash") == expected


def execute(template: str, output: Path, title: str, parameters: dict) -> None:
    """Execute a notebook template with papermill, a title cell first so that each executed
    notebook has its own heading in the book."""
    notebook = nbformat.read(NOTEBOOKS / f"{template}.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(title))
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / f"{template}.ipynb"
        nbformat.write(notebook, source)
        papermill.execute_notebook(str(source), str(output), parameters=parameters,
                                   kernel_name="python3", progress_bar=False,
                                   cwd=str(NOTEBOOKS))


def dependencies(spec: dict) -> set[str]:
    """Experiments whose runs this one reads: its ``epochs_from`` and its members' checkpoints."""
    names = {spec["epochs_from"]} if "epochs_from" in spec else set()
    for member in spec.get("model.members", []):
        names |= set(re.findall(r"\{checkpoints\}/([^/]+)/", member))
    return names


def run_one(name: str, spec: dict, seed: int, quick: bool) -> None:
    title = f"# `{name}`, seed {seed}\n\n{spec.get('description', '')}"
    execute(spec.get("notebook", "train"), notebook_path(name, seed, quick), title,
            {"experiment": name, "seed": seed, "quick": quick, "num_threads": 1})


def run_all(names: list[str] | None = None, quick: bool = False, jobs: int = 2,
            seeds: list[int] | None = None, force: bool = False) -> None:
    registry = load_registry()
    experiments = registry["experiments"]
    analyses = registry.get("analyses", {})
    names = names or list(experiments) + list(analyses)
    unknown = [n for n in names if n not in experiments and n not in analyses]
    if unknown:
        raise ConfigError(f"unknown experiment(s) {unknown}; experiments.yaml defines "
                          f"{sorted(experiments) + sorted(analyses)}")
    # One pool for every run, so that a 3-seed experiment does not leave a core idle while its
    # third seed trains; an experiment that needs earlier runs waits for just those.
    submitted: dict[str, list[Future]] = {}
    bar = tqdm(total=0, desc="runs", unit="run")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            # Registry order is dependency order: what a run reads was submitted before it.
            for name in [n for n in experiments if n in names]:
                spec = experiments[name]
                for dependency in dependencies(spec):
                    for future in submitted.get(dependency, []):
                        future.result()  # re-raises the dependency's failure here
                todo = [s for s in (seeds or spec["seeds"])
                        if force or not is_up_to_date(name, s, quick)]
                skipped = len(seeds or spec["seeds"]) - len(todo)
                if skipped:
                    tqdm.write(f"{name}: {skipped} seed(s) up to date, skipped")
                bar.total += len(todo)
                bar.refresh()
                submitted[name] = [pool.submit(run_one, name, spec, seed, quick) for seed in todo]
                for future in submitted[name]:
                    future.add_done_callback(lambda _: bar.update(1))
            for futures in submitted.values():
                for future in futures:
                    future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failure or Ctrl-C: start no queued run
            raise
    bar.close()
    for name in [n for n in analyses if n in names]:
        spec = analyses[name]
        print(f"analysis notebook {name}")
        execute(spec.get("notebook", name), notebook_path(name, None, quick),
                f"# {spec['title']}", {"quick": quick})
