"""Command line: ``nextloc data summary``, ``nextloc search``, ``nextloc run``,
``nextloc tables``, ``nextloc results known``, ``nextloc archive``, ``nextloc preprocess``,
``nextloc train``, ``nextloc benchmark``. Each command is one small function below; ``main`` turns a
user's mistake, a file that cannot be written, or Ctrl-C into one or two lines on stderr and exit
code 2 (130 when interrupted), with no traceback unless ``--debug`` asks for it."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from nextloc.cli_args import Parser, add_preprocess_benchmark_options, bounded_int
from nextloc.core.errors import FULL_DISK, MESSAGE_LIMIT, NextlocError, os_error_text, shorten

MAX_PREVIOUS_DAYS = 3650  # ten years of history is already longer than any dataset


def data_command(args) -> None:
    from nextloc.data.split import load_dataset

    summary = load_dataset(args.data, previous_day=args.previous_day).summary()
    if args.json:
        print(json.dumps(summary))
        return
    notes = summary.pop("notes", [])
    print("\n".join([f"{k:>12}: {v:,}" for k, v in summary.items()]
                    + [f"note: {note}" for note in notes]))


def search_command(args) -> None:
    from nextloc.search.run import run_search

    project = registry_project(args)
    # The registry lists searches in the order they build on each other (base_search).
    for name in args.names or list(project.registry.get("searches") or {}):
        print(run_search(name, jobs=args.jobs, storage=args.storage, data=project.data).head(10)
              .drop(columns=["trial"]).to_string(index=False))


def run_command(args) -> None:
    from nextloc.experiments.runner import run_all

    run_all(args.names, quick=args.quick, jobs=args.jobs, seeds=args.seeds, force=args.force,
            project=registry_project(args))


def tables_command(args) -> None:
    from nextloc.report.build import write_report_sources

    for path in write_report_sources():
        print(path)


def results_command(args) -> None:
    from nextloc.experiments.known_places import fill_known_columns

    print(fill_known_columns())


def archive_command(args) -> None:
    from nextloc.experiments.results import archive_runs

    print(archive_runs(args.experiment, args.label))


def preprocess_command(args) -> None:
    from nextloc.preprocess.pipeline import load_config, preprocess
    from nextloc.preprocess.config import HELP

    config = load_config(args.config, **{name: getattr(args, name) for name in HELP})
    result = preprocess(args.raw, args.out, config, progress=not args.quiet,
                        workers=args.workers, scheduler=args.scheduler)
    if args.json:
        print(json.dumps({"out": str(args.out), **result.counts}))
        return
    print("\n".join(f"{k:>26}: {v:,}" for k, v in result.counts.items()))
    print(f"wrote {args.out}; next: nextloc data summary --data {args.out}")


def add_preprocess_parser(commands) -> None:
    from nextloc.preprocess.config import HELP, option_type

    parser = commands.add_parser(
        "preprocess", help="raw GPS tracks (Geolife .plt) -> a dataset folder, on trackintel",
        description="Staypoints, activity flag, user quality filter, DBSCAN locations, merging "
                    "and the valid-id rule of Hong et al. (2023). Options: defaults, then "
                    "--config FILE (YAML), then these flags.")
    parser.add_argument("raw", metavar="RAW_DIR", help="folder of <user>/Trajectory/*.plt")
    parser.add_argument("--out", required=True, metavar="DATA_DIR", help="dataset folder to write")
    parser.add_argument("--config", metavar="FILE", help="YAML mapping of option: value")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--workers", type=bounded_int(1), metavar="N", help="processes for the "
                        "per-user steps, one shard of users each (default: one per core)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="run the shards on the Dask "
                        "cluster at ADDRESS (tcp://host:8786), or 'local' for a LocalCluster "
                        "of --workers processes; its workers must see RAW_DIR at the same path")
    for name, text in HELP.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=option_type(name),
                            metavar="N" if option_type(name) is not str else "NAME", help=text)
    parser.set_defaults(handler=preprocess_command)


def train_command(args) -> None:
    from nextloc.experiments.train_one import format_report, train_on_dataset

    report = train_on_dataset(args.data, args.model, args.config, seed=args.seed,
                              device=args.device, previous_day=args.previous_day,
                              epochs=args.epochs, progress=not args.json)
    print(json.dumps(report) if args.json else format_report(report))


def add_train_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train and evaluate one model on a dataset, outside the registry",
        description="The headline settings of the model's experiment in the registry (or "
                    "--config FILE), the standard split, early stopping on validation, one test "
                    "evaluation. Prints metrics; writes nothing to results/.")
    add_data_option(parser)
    parser.add_argument("--model", help="a registered model: pointer, markov, baseline, ...")
    parser.add_argument("--config", metavar="FILE", help="YAML training settings, in the "
                        "form of a registry entry")
    parser.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=42)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_previous_day_option(parser)
    parser.add_argument("--epochs", type=bounded_int(0),
                        help="override the maximum number of epochs")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=train_command)


def registry_project(args):
    """The project of ``run``/``search``, with the folder of ``--data DIR``. results/ holds the
    report's runs on the shared Geolife data, so another dataset is for quick runs only."""
    from pathlib import Path

    from nextloc.core import paths
    from nextloc.core.errors import ConfigError
    from nextloc.experiments.project import Project

    if args.data is None:
        return Project()

    data = Path(args.data).resolve()
    report_data = (paths.PROJECT_ROOT.parent / "shared" / "data" / "geolife").resolve()
    if data != report_data and not getattr(args, "quick", False):
        raise ConfigError(f"--data {args.data}: results/ holds the report's runs on the shared "
                          f"Geolife data; use `nextloc run --quick --data DIR` for a look, or "
                          f"`nextloc train --data DIR --model NAME` to train on another dataset.")
    return Project(data=data)


def benchmark_command(args) -> None:
    if args.what == "speed":
        from nextloc.speed import default_experiments, write_benchmark

        print(write_benchmark(experiments=args.experiments or default_experiments(),
                              steps=args.steps, repeats=args.repeats))
        return
    from nextloc import benchmarks

    if args.what == "preprocess" and args.raw is None:
        extra = [(args.two_workers_at, 2)] if args.two_workers_at else []
        report = benchmarks.benchmark_preprocess_scaling(args.users, args.workers, extra)
        print(json.dumps(report["runs"], indent=1))
    elif args.what == "preprocess":
        report = benchmarks.benchmark_preprocess(args.raw)
        print(json.dumps({k: v for k, v in report.items() if k not in ("options", "runs")},
                         indent=1))
    else:
        print(json.dumps(benchmarks.benchmark_training()["rows"], indent=1))


def add_benchmark_parser(commands) -> None:
    parser = commands.add_parser(
        "benchmark", help="time preprocessing or training; writes results/benchmarks/")
    parser.add_argument("what", choices=["preprocess", "training", "speed"],
                        help="speed: this code against the commit before the speed-up, "
                        "into results/benchmarks/training.json")
    parser.add_argument("experiments", nargs="*", help="for 'speed' (default: the baseline, the "
                        "pointer, the pair and the headline of the registry)")
    # Checked before minutes of measuring: --repeats -1 once wrote Infinity into results/.
    parser.add_argument("--steps", type=bounded_int(1, 100_000), default=40, help="timed "
                        "training batches ('speed')")
    parser.add_argument("--repeats", type=bounded_int(1, 1000), default=2, help="repeats per "
                        "round ('speed')")
    add_preprocess_benchmark_options(parser)
    parser.set_defaults(handler=benchmark_command)


def add_previous_day_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--previous-day", type=bounded_int(1, MAX_PREVIOUS_DAYS), metavar="DAYS",
                        help="days of history "
                        "(default: the dataset's own, from its preprocess.json, else 7)")


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="dataset folder (default: $NEXTLOC_DATA, "
                        "else ../shared/data/geolife); see README, 'Your own data'")


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="nextloc", description=__doc__)
    root.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = root.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect the dataset")
    data.add_argument("action", choices=["summary"])
    data.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_previous_day_option(data)
    add_data_option(data)
    data.set_defaults(handler=data_command)

    search = commands.add_parser("search", help="hyperparameter search on validation")
    search.add_argument("names", nargs="*", help="searches, in order (default: all)")
    search.add_argument("--jobs", "--workers", type=bounded_int(1), default=2,
                        help="worker processes on this machine, one trial each at a time")
    search.add_argument("--storage", help="an Optuna storage URL shared by all workers, e.g. "
                        "postgresql+psycopg2://user@host/db, or journal:PATH, a journal file "
                        "on a shared file system (default: a SQLite file in runs/search/)")
    add_data_option(search)
    search.set_defaults(handler=search_command)

    run = commands.add_parser("run", help="run experiments with papermill")
    run.add_argument("names", nargs="*", help="experiments (default: all in the registry)")
    run.add_argument("--quick", action="store_true", help="tiny epochs, scratch outputs only")
    run.add_argument("--jobs", type=bounded_int(1), default=2,
                     help="runs in parallel (1 thread each)")
    run.add_argument("--seeds", type=bounded_int(0, 2**32 - 1), nargs="*",
                     help="override the registry's seeds")
    run.add_argument("--force", action="store_true", help="re-run even when up to date")
    add_data_option(run)
    run.set_defaults(handler=run_command)

    commands.add_parser("tables", help="write the book's tables from results/").set_defaults(
        handler=tables_command)
    results = commands.add_parser("results", help="known: fill results/metrics.csv's "
                                  "test_acc1_known and test_unseen_share from the saved runs")
    results.add_argument("action", choices=["known"])
    results.set_defaults(handler=results_command)

    archive = commands.add_parser("archive", help="move an experiment's runs to "
                                  "results/superseded/LABEL before its configuration changes")
    archive.add_argument("experiment")
    archive.add_argument("--as", dest="label", required=True, help="a plain name, not a path")
    archive.set_defaults(handler=archive_command)

    add_preprocess_parser(commands)
    add_train_parser(commands)
    add_benchmark_parser(commands)
    return root


def interrupt(signum, frame):
    """SIGTERM ends a command the way Ctrl-C does: kernels stopped, no stamp, exit code 130."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def describe(err: BaseException) -> str:
    if isinstance(err, NextlocError):
        return str(err)
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if err.errno in FULL_DISK:
        return f"error: {os_error_text(err)}."
    return f"error: {os_error_text(err)}; check that the file or folder is writable."


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed
        return done.code
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if in_main_thread else None
    try:
        args.handler(args)
    except BrokenPipeError:
        # The reader of our output went away (`nextloc ... | head`): stop quietly, as cat does;
        # stdout goes to devnull so that flushing it at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (NextlocError, KeyboardInterrupt, OSError) as err:
        if args.debug:
            raise
        message = describe(err)
        prefix = "" if message.startswith(("interrupted", "error:")) else "error: "
        print(f"nextloc: {prefix}{shorten(message, MESSAGE_LIMIT)}", file=sys.stderr)
        return getattr(err, "exit_code", 130 if isinstance(err, KeyboardInterrupt) else 2)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
