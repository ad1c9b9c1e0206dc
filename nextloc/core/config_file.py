"""Reading YAML configuration files: safely (no ``!!python`` tags), with YAML 1.2 numbers, and
with one clear message naming the file and line when the text is not valid YAML.

PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string; YAML 1.2 and every user read it as
a number, and so does this reader.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from nextloc.core.errors import ConfigError, shorten


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's, when built: 10x faster
    """The safe loader, plus YAML 1.2's exponent floats without a dot (``1e-3``, ``5E+2``)."""


Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                             re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                             list("-+0123456789"))


def parse_yaml(text: str, source: str):
    """The YAML document in ``text``; ``source`` names it in error messages."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        if "constructor for the tag" in problem:
            problem += " (nextloc reads YAML safely: no !!python or other custom tags)"
        raise ConfigError(f"{source}{where}: {shorten(problem, 200)}.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({shorten(err, 200)}).") from None


MAX_BYTES = 10_000_000  # a settings file is a few kB; this stops /dev/zero or a log by mistake


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of a settings file. A name that is no regular file (a named pipe, which
    blocked the reader, or /dev/zero, read until memory ran out) is refused before it is opened,
    and so is a file too large to be settings."""
    path = Path(path)
    if not path.is_file():
        kind = "not found" if not path.exists() else "not a regular file (a pipe or a device?)"
        raise ConfigError(f"{path}: {what} {kind}.")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, too large for a {what} "
                          f"(at most {MAX_BYTES:,}).")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; is it the {what}?") from None


def read_yaml(path: str | Path, what: str = "file"):
    """The YAML document of ``path``; a missing, unreadable or invalid file is a ConfigError."""
    return parse_yaml(read_text(path, what), str(path))
