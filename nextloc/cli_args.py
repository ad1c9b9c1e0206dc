"""The command line's argparse helpers: a parser whose usage error is one line, a bounded
integer type, and the options of ``nextloc benchmark preprocess``."""
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


def add_preprocess_benchmark_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", metavar="RAW_DIR", help="'preprocess' on these Geolife tracks "
                        "and copies of their users, into results/benchmarks/preprocess.json "
                        "(e.g. ../shared/data/geolife_raw_sample/Data)")
    parser.add_argument("--users", type=bounded_int(1, 100_000), nargs="+",
                        default=[40, 130, 400], help="'preprocess': sizes of the generated "
                        "tracks, in users, into results/benchmarks/preprocess_scaling.json")
    parser.add_argument("--workers", type=bounded_int(1, 1024), nargs="+", default=[1],
                        help="'preprocess': worker counts run at every size")
    parser.add_argument("--two-workers-at", type=bounded_int(0, 100_000), default=40,
                        metavar="USERS", help="'preprocess': one more run with 2 workers at "
                        "this size (0: none)")
