"""Run experiments as executed notebooks: one papermill run of ``notebooks/train.ipynb`` per
(experiment, seed), written into the book, skipped when its outputs are up to date."""
from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill
from tqdm import tqdm

from nextloc.data import PROJECT_ROOT
from nextloc.errors import ConfigError
from nextloc.experiments import RUN_SCRATCH, config_hash, load_registry, run_dir, run_settings

NOTEBOOKS = PROJECT_ROOT / "notebooks"
BOOK_RUNS = PROJECT_ROOT / "book" / "runs"


def notebook_path(name: str, seed: int | None, quick: bool) -> Path:
    base = RUN_SCRATCH / "quick" / "book" if quick else BOOK_RUNS
    return base / name / f"seed_{seed}.ipynb" if seed is not None else base / f"{name}.ipynb"


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
    # Registry order is dependency order (a refit follows the runs it takes its epochs from).
    for name in [n for n in experiments if n in names]:
        spec = experiments[name]
        todo = [s for s in (seeds or spec["seeds"])
                if force or not is_up_to_date(name, s, quick)]
        skipped = len(seeds or spec["seeds"]) - len(todo)
        if skipped:
            print(f"{name}: {skipped} seed(s) up to date, skipped")
        if not todo:
            continue

        def one(seed: int, name=name, spec=spec) -> None:
            title = f"# `{name}`, seed {seed}\n\n{spec.get('description', '')}"
            execute(spec.get("notebook", "train"), notebook_path(name, seed, quick), title,
                    {"experiment": name, "seed": seed, "quick": quick, "num_threads": 1})

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(tqdm(pool.map(one, todo), total=len(todo), desc=name))
    for name in [n for n in analyses if n in names]:
        spec = analyses[name]
        print(f"analysis notebook {name}")
        execute(spec.get("notebook", name), notebook_path(name, None, quick),
                f"# {spec['title']}", {"quick": quick})
