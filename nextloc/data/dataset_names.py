"""Which dataset an experiment runs on: the registry's ``dataset:`` key, a folder name beside
the report's data.

``geolife`` (the default, and every experiment without the key) is the report's data folder:
``$NEXTLOC_DATA``, else ``../shared/data/geolife``. Any other name, e.g. ``fsq_nyc``, is a
folder of that name beside it: ``$NEXTLOC_DATA``'s parent, else ``../shared/data``. The name is
recorded in the ``dataset`` column of ``results/metrics.csv``; the folder's contents are part
of each run's stamp (:mod:`nextloc.experiments.run_inputs`).
"""
from __future__ import annotations

import os
from pathlib import Path

from nextloc.data.split import default_data_dir
from nextloc.core.errors import DataError
from nextloc.core import paths

DEFAULT_DATASET = "geolife"


def data_root(data: Path | None = None) -> Path:
    """The folder that holds the datasets: the parent of ``data`` (the report's data folder
    given with ``--data``), else ``$NEXTLOC_DATA``'s parent, else ../shared/data."""
    if data is not None:
        return Path(data).parent
    env = os.environ.get("NEXTLOC_DATA")
    return Path(env).parent if env else paths.PROJECT_ROOT.parent / "shared" / "data"


def dataset_dir(name: str | None = None, data: Path | None = None) -> Path:
    """The folder of the dataset called ``name`` (None: the default, Geolife), beside ``data``
    when the report's data folder was given with ``--data``."""
    if name is None or name == DEFAULT_DATASET:
        return Path(data) if data is not None else default_data_dir()
    return data_root(data) / name


def experiment_dataset(spec: dict) -> str:
    """The dataset name of an experiment's registry entry."""
    return spec.get("dataset", DEFAULT_DATASET)


def check_dataset_folder(owner: str, name: str, data: Path | None = None,
                         kind: str = "experiment") -> Path:
    """The folder of an experiment's (or a search's) dataset, or one clear error when it is not
    there."""
    folder = dataset_dir(name, data)
    if not folder.is_dir():
        raise DataError(f"{kind} '{owner}': dataset '{name}' not found at {folder} "
                        f"(datasets other than {DEFAULT_DATASET} are folders beside the report's "
                        f"data: $NEXTLOC_DATA's parent, else ../shared/data).")
    return folder
