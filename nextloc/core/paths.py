"""Where things live in the project, and the one way files are written: to a temporary file
beside the target, then renamed, so that a reader never sees half a file."""
from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_DIR = PROJECT_ROOT / "experiments"  # one YAML file per chapter of the book
RESULTS_DIR = PROJECT_ROOT / "results"
METRICS_FILE = RESULTS_DIR / "metrics.csv"
SEARCH_DIR = RESULTS_DIR / "search"
SUPERSEDED_DIR = RESULTS_DIR / "superseded"
RUN_SCRATCH = PROJECT_ROOT / "runs"  # git-ignored: checkpoints, quick runs
NOTEBOOKS = PROJECT_ROOT / "notebooks"
BOOK_RUNS = PROJECT_ROOT / "book" / "runs"
GENERATED = PROJECT_ROOT / "book" / "generated"  # written by `nextloc tables` only
BUILD = PROJECT_ROOT / "_build"  # the built book and its PDFs
FAILED_RUNS = RUN_SCRATCH / "failed"  # notebooks and logs of runs that failed, for reading
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_plain_name(name) -> bool:
    """A name usable as one path component (an experiment, an archive label): letters, digits and
    ``_.-``, starting with a letter or digit, without ``..``."""
    return isinstance(name, str) and bool(PLAIN_NAME.fullmatch(name)) and ".." not in name


def run_dir(experiment: str, seed: int, quick: bool) -> Path:
    """The folder of one run's metrics, history, config and predictions."""
    base = RUN_SCRATCH / "quick" / "results" if quick else RESULTS_DIR / "runs"
    return base / experiment / f"seed_{seed}"


def checkpoints_dir(quick: bool) -> Path:
    return RUN_SCRATCH / ("quick" if quick else "full") / "checkpoints"


def checkpoint_path(experiment: str, seed: int, quick: bool) -> Path:
    return checkpoints_dir(quick) / experiment / f"seed_{seed}.safetensors"


def notebook_path(name: str, seed: int | None, quick: bool) -> Path:
    """The executed notebook of one run (``seed``) or of one analysis (``seed=None``)."""
    base = RUN_SCRATCH / "quick" / "book" if quick else BOOK_RUNS
    return base / name / f"seed_{seed}.ipynb" if seed is not None else base / f"{name}.ipynb"


# (finished temporary file, target) pairs that all_or_nothing() holds back; None outside it
_held_back: list[tuple[Path, Path]] | None = None


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file onto ``path`` (inside
    :func:`all_or_nothing`, when its block ends).

    The temporary name is unique per call, so parallel writers never share one; on failure it
    is removed and ``path`` keeps its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the target's extensions: numpy and pandas pick formats by them.
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes),
                                   dir=path.parent)
    os.close(handle)
    tmp = Path(tmp)
    kept = False
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the target's mode, or the usual 0644
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        if _held_back is not None:
            _held_back.append((tmp, path))
            kept = True
        else:
            os.replace(tmp, path)
    except OSError as err:
        if err.filename not in (None, str(tmp)):
            raise
        # a failed write (a full disk) names no file, and the temporary one means nothing to
        # the user: name the target
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        if not kept:
            tmp.unlink(missing_ok=True)
    return path


@contextmanager
def all_or_nothing():
    """Within the block, files written with :func:`atomic_write` replace their targets only when
    the block ends without an error; after an error (a full disk half-way) none does, so a command
    that writes many committed files changes all of them or none. Renames need no free space.
    Code inside must not read back a file it wrote in the same block."""
    global _held_back
    if _held_back is not None:  # already inside one: the outer block decides
        yield
        return
    _held_back = []
    try:
        yield
    except BaseException:
        for tmp, _ in _held_back:
            tmp.unlink(missing_ok=True)
        _held_back = None
        raise
    held, _held_back = _held_back, None
    for tmp, target in held:
        os.replace(tmp, target)
