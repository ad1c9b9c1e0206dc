"""The command line's argparse helpers: a parser whose usage error is one line, and a bounded
integer type."""
from __future__ import annotations

import argparse

from nextloc.core.errors import shorten


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"nextloc: error: {shorten(message, 300)} (see `{self.prog} --help`)\n")


def bounded_int(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {shorten(repr(text), 40)}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    return parse
