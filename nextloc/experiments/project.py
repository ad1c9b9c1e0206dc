"""The project a command works on: its folders, its registry (read once per command) and the
dataset folder given with ``--data``.

The command line makes one and hands it to what needs it. The folders are those of
:mod:`nextloc.core.paths`, read when asked for, so a test that points the paths at a temporary
project moves a Project with them. The data folder travels as an argument, and to a run's
notebook as its papermill parameter ``data``: kernels no longer learn it from an environment
variable set for the whole process.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nextloc.core import paths
from nextloc.data.dataset_names import dataset_dir
from nextloc.experiments.registry import load_registry


@dataclass(frozen=True)
class Project:
    data: Path | None = None  # --data; None: $NEXTLOC_DATA, else ../shared/data/geolife

    @property
    def root(self) -> Path:
        return paths.PROJECT_ROOT

    @property
    def results(self) -> Path:
        return paths.RESULTS_DIR

    @property
    def runs(self) -> Path:
        """The executed notebooks of full runs, the book's run pages."""
        return paths.BOOK_RUNS

    @cached_property
    def registry(self) -> dict:
        return load_registry()

    @property
    def experiments(self) -> dict:
        return self.registry["experiments"]

    def dataset_dir(self, name: str | None = None) -> Path:
        """The folder of the dataset ``name`` (None: the report's) for this project's data."""
        return dataset_dir(name, self.data)
