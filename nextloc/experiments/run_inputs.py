"""What a run reads besides its settings: the dataset folder and the notebook template. Their
identity is stored in the run's stamp beside ``config_hash``, so a run is up to date only for the
data and notebook it was made with (``nextloc run --quick --data OTHER`` once kept the first
dataset's outputs and said "up to date").

``config_hash`` itself is unchanged, so the committed stamps of full runs, made before this file
existed and without these fields, keep their meaning; see :func:`inputs_match`.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from nextloc.core import paths
from nextloc.core.errors import DataError

COMPANIONS = ("preprocess.json",)  # read beside the tables: its previous_day sets the window


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime): a run checks many stamps."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_identity(folder: str | Path | None = None) -> str:
    """A hash of the names and contents of the files a run reads from the dataset folder (by
    content, not by path or mtime, so a copied or re-cloned folder is the same dataset)."""
    from nextloc.data.datasets import dataset_files
    from nextloc.data.presplit import split_files
    from nextloc.data.split import default_data_dir

    folder = Path(folder) if folder is not None else default_data_dir()
    try:
        published = split_files(folder)  # a folder of published split files (Foursquare)
        files = None if published else dataset_files(folder)
    except DataError:
        return "missing"  # never equal to a stamp's identity: the run's own error says why
    named = (list(published.values()) if published else
             [files.staypoints, files.valid_ids, files.locations,
              *(folder / name for name in COMPANIONS)])
    digest = hashlib.sha256()
    for path in named:
        if path is not None and path.is_file():
            digest.update(f"{path.name}\0{_file_digest(path)}\0".encode())
    return digest.hexdigest()[:16]


def notebook_identity(template: str) -> str:
    path = paths.NOTEBOOKS / f"{template}.ipynb"
    return _file_digest(path)[:16] if path.is_file() else "missing"


def run_inputs(spec: dict, data: Path | None = None) -> dict:
    """The ``inputs`` of a stamp for an experiment's registry entry ``spec``: its dataset's
    identity (the name too, for a dataset other than Geolife: the stamps of Geolife's runs,
    made before datasets had names, keep their meaning) and its notebook's; ``data`` is the
    report's data folder given with ``--data``."""
    from nextloc.data.dataset_names import DEFAULT_DATASET, dataset_dir, experiment_dataset

    name = experiment_dataset(spec)
    named = {} if name == DEFAULT_DATASET else {"dataset": name}
    return {**named, "data": dataset_identity(dataset_dir(name, data)),
            "notebook": notebook_identity(spec.get("notebook", "train"))}


def inputs_match(stamp: dict, spec: dict, quick: bool, data: Path | None = None) -> bool:
    """Whether a stamp was made with today's data and notebook. A stamp without ``inputs``
    predates them: a full run's (the committed results, on the shared data) still counts; a
    quick run's is scratch and cheap to redo, so it does not."""
    if "inputs" not in stamp:
        return not quick
    return stamp["inputs"] == run_inputs(spec, data)
