"""The errors nextloc raises on bad input, so callers can tell them from bugs. The command line
turns each into one short line on stderr and exit code 2 (130 for an interrupted run)."""
from __future__ import annotations

import errno

MESSAGE_LIMIT = 500  # characters: an error line never echoes a whole bad input
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # no space left, or the user's quota used up


class NextlocError(Exception):
    """Base class: a problem with the user's input or configuration, stated in one message."""

    exit_code = 2


class DataError(NextlocError):
    """The data files are missing, malformed, or give an empty split."""


class ConfigError(NextlocError):
    """An unknown model or experiment name, a bad option, or a model over the parameter budget."""


class TrainingError(NextlocError):
    """Training diverged: a non-finite loss or non-finite weights."""


class ResultsError(NextlocError):
    """A results file (results/metrics.csv, a search table, a run's stamp) cannot be read."""


class RunError(NextlocError):
    """An experiment's notebook failed; the message names the run and the notebook's error."""


class Interrupted(NextlocError):
    """Ctrl-C or SIGTERM stopped a command; the message says what was stopped."""

    exit_code = 130


def os_error_text(err: OSError, path: object = None) -> str:
    """An OSError in a few words, naming its file (or ``path``, for a failed write, which names
    none); a full disk says so rather than suggesting the file is not writable."""
    where = err.filename or path
    if err.errno in FULL_DISK:
        return (f"no space left on the device writing {where}; free some space and run the "
                f"command again")
    return f"{err.strerror or err}{f' ({where})' if where else ''}"


def shorten(text: object, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters around an ellipsis, for echoing user input."""
    text = str(text)
    if len(text) <= limit:
        return text
    keep = max(limit - 5, 2)
    return f"{text[:keep - keep // 3]} ... {text[len(text) - keep // 3:]}"
