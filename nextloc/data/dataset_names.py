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
from nextloc.core.paths import PROJECT_ROOT

DEFAULT_DATASET = "geolife"


def data_root() -> Path:
    """The folder that holds the datasets: ``$NEXTLOC_DATA``'s parent, else ../shared/data."""
    env = os.environ.get("NEXTLOC_DATA")
    return Path(env).parent if env else PROJECT_ROOT.parent / "shared" / "data"


def dataset_dir(name: str | None = None) -> Path:
    """The folder of the dataset called ``name`` (None: the default, Geolife)."""
    if name is None or name == DEFAULT_DATASET:
        return default_data_dir()
    return data_root() / name


def experiment_dataset(spec: dict) -> str:
    """The dataset name of an experiment's registry entry."""
    return spec.get("dataset", DEFAULT_DATASET)


def check_dataset_folder(experiment: str, name: str) -> Path:
    """The folder of an experiment's dataset, or one clear error when it is not there."""
    folder = dataset_dir(name)
    if not folder.is_dir():
        raise DataError(f"experiment '{experiment}': dataset '{name}' not found at {folder} "
                        f"(datasets other than {DEFAULT_DATASET} are folders beside the report's "
                        f"data: $NEXTLOC_DATA's parent, else ../shared/data).")
    return folder
