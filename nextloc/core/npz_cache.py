"""A folder of npz files keyed by the inputs that made them: never pickled, written atomically,
and read back as None (so that the caller rebuilds it) when a file is damaged."""
from __future__ import annotations

import json
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nextloc.core.paths import atomic_write


def save(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Written through :func:`nextloc.core.paths.atomic_write`: a temporary file of its own per
    call, then renamed, so readers never see half a file and parallel writers never collide."""
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, meta=np.array(json.dumps(meta)),
                                                       **arrays))


def load(path: Path, keys: list[str]) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) with every key of ``keys``, or None when the file is missing or damaged."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {key: stored[key] for key in keys}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            zlib.error) as err:
        print(f"nextloc: the cache file {path} cannot be read ({type(err).__name__}); "
              f"rebuilding it.", file=sys.stderr)
        return None
    if not isinstance(meta, dict):
        return None
    return arrays, meta
