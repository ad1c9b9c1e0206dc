"""Command line: ``nextloc data summary --json``, ``nextloc search``, ``nextloc run``,
``nextloc tables``, ``nextloc archive``."""
from __future__ import annotations

import argparse
import json
import sys

from nextloc.errors import NextlocError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nextloc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect the dataset")
    data.add_argument("action", choices=["summary"])
    data.add_argument("--json", action="store_true", help="print machine-readable JSON")
    data.add_argument("--previous-day", type=int, default=7)

    search = commands.add_parser("search", help="hyperparameter search on validation")
    search.add_argument("names", nargs="+", help="searches of experiments.yaml, in order")
    search.add_argument("--jobs", type=int, default=2)

    run = commands.add_parser("run", help="run experiments with papermill")
    run.add_argument("names", nargs="*", help="experiments (default: all in experiments.yaml)")
    run.add_argument("--quick", action="store_true", help="tiny epochs, scratch outputs only")
    run.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    run.add_argument("--seeds", type=int, nargs="*", help="override the registry's seeds")
    run.add_argument("--force", action="store_true", help="re-run even when up to date")

    commands.add_parser("tables", help="write the book's tables from results/metrics.csv")

    archive = commands.add_parser("archive", help="move an experiment's runs to "
                                  "results/superseded/LABEL before its configuration changes")
    archive.add_argument("experiment")
    archive.add_argument("--as", dest="label", required=True)

    args = parser.parse_args(argv)
    try:
        if args.command == "data":
            from nextloc.data import load_dataset

            summary = load_dataset(previous_day=args.previous_day).summary()
            print(json.dumps(summary) if args.json else
                  "\n".join(f"{k:>12}: {v:,}" for k, v in summary.items()))
        elif args.command == "search":
            from nextloc.search import run_search

            for name in args.names:
                print(run_search(name, jobs=args.jobs).head(10).to_string(index=False))
        elif args.command == "run":
            from nextloc.runner import run_all

            run_all(args.names, quick=args.quick, jobs=args.jobs, seeds=args.seeds,
                    force=args.force)
        elif args.command == "archive":
            from nextloc.experiments import archive_runs

            print(archive_runs(args.experiment, args.label))
        elif args.command == "tables":
            from nextloc.report import write_tables

            for path in write_tables():
                print(path)
    except NextlocError as err:
        print(f"nextloc: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
