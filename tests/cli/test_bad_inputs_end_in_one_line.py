"""Bad and hostile inputs (issue 9): each must end in one short message that names the problem,
exit code 2 (or the documented exception), no traceback, and no change to the project's files.

The command-line cases run ``nextloc.cli.main`` in a forked child process on a temporary project
(tests/project_tools.py): real exit codes and real stderr, a few milliseconds each. The API cases
call the library on a temporary project and expect the named exception.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from project_tools import (GOOD_ROW, REGISTRY, ROW_TEXT, SEARCH_CSV, X, ForkedCli,
                           check_clean_failure, full_project, populate, registry_file, snapshot)

from nextloc.core.config_file import parse_yaml
from nextloc.data.split import STAYPOINTS_FILE, VALID_IDS_FILE
from nextloc.core.errors import ConfigError, DataError, NextlocError, ResultsError, TrainingError
from nextloc.experiments.run import train_and_record_seed
from nextloc.models import build_model
from nextloc.models.checkpoint import load_checkpoint
from nextloc.experiments.registry import epochs_from, fill_placeholders, load_registry, train_config
from nextloc.experiments.results import archive_runs, best_trial, read_metrics, record_metrics
from nextloc.experiments.runner import run_all
from nextloc.search.run import run_search
from nextloc.training.settings import TrainConfig

RUN_X = ["run", "x", "--quick"]


@pytest.fixture(scope="module")
def forked_cli():
    return ForkedCli()


@pytest.fixture(scope="module")
def data_env(tmp_path_factory) -> dict:
    """The tiny synthetic dataset, and one cache folder for all cases."""
    from conftest import make_staypoints

    folder = tmp_path_factory.mktemp("tiny-geolife")
    staypoints, valid_ids = make_staypoints()
    staypoints.to_csv(folder / STAYPOINTS_FILE, index=False)
    pd.DataFrame({"id": valid_ids}).to_csv(folder / VALID_IDS_FILE, index=False)
    return {"NEXTLOC_DATA": str(folder), "NEXTLOC_CACHE": str(tmp_path_factory.mktemp("cache"))}


# --- the cases: (id, argv, change to the project, what the message must say) ----------------

def registry_text(text):
    return lambda root: registry_file(root).write_text(text)


def experiment(**changes):
    """x with ``changes`` (a value None removes the key)."""
    spec = {k: v for k, v in {**X, **changes}.items() if v is not None}
    return lambda root: registry_file(root).write_text(
        yaml.safe_dump({**REGISTRY, "experiments": {**REGISTRY["experiments"], "x": spec}}))


def registry(**sections):
    return lambda root: registry_file(root).write_text(yaml.safe_dump(
        {**REGISTRY, **sections}))


def metrics_line(line: int, text: str):
    def change(root):
        path = root / "results" / "metrics.csv"
        lines = path.read_text().splitlines()
        lines[line - 1] = text
        path.write_text("\n".join(lines) + "\n")
    return change


def metrics_value(column: str, value):
    def change(root):
        path = root / "results" / "metrics.csv"
        pd.DataFrame([{**GOOD_ROW, column: value}]).to_csv(path, index=False)
    return change


def search_text(text: str):
    return lambda root: (root / "results" / "search" / "s.csv").write_text(text)


def nothing(root):
    pass


CASES = [
    # the registry as a whole
    ("empty registry", RUN_X, registry_text(""), "main.yaml is empty"),
    ("malformed YAML", RUN_X, registry_text("experiments:\n  x: {model: m, seeds: [1\n"),
     r"main.yaml line \d+, column \d+"),
    ("registry is a list", RUN_X, registry_text("- x\n- y\n"), "must be a mapping"),
    ("!!python tag", RUN_X, registry_text("experiments: !!python/object/apply:os.system "
                                          "['touch hacked']\n"), r"no !!python"),
    ("unknown section", RUN_X, registry(experiment={"x": X}), r"unknown section\(s\) \['experiment'\]"),
    ("experiments is a list", RUN_X, registry_text("experiments: [x]\n"),
     "'experiments' must be a mapping"),
    ("registry not UTF-8", RUN_X, lambda root: registry_file(root).write_bytes(
        b"\xff\xfe\x00x"), "not UTF-8"),
    ("registry missing", RUN_X, lambda root: registry_file(root).unlink(),
     "experiment registry not found"),
    ("a 300 kB value", RUN_X, experiment(lr="1" * 300_000), "invalid training setting 'lr'"),
    # one experiment
    ("experiment not a mapping", RUN_X, registry(experiments={"x": 5}), "mapping of settings"),
    ("no model", RUN_X, experiment(model=None), "no 'model'"),
    ("seeds: 42", RUN_X, experiment(seeds=42), "seeds must be a list"),
    ("seeds empty", RUN_X, experiment(seeds=[]), "seeds must be a list"),
    ("seeds not integers", RUN_X, experiment(seeds=["a"]), "seeds must be a list"),
    ("seeds repeated", RUN_X, experiment(seeds=[1, 1]), "distinct"),
    ("seed negative", RUN_X, experiment(seeds=[-1]), "seeds must be a list"),
    ("seed: 42 key", RUN_X, experiment(seed=42), "'seed' is set per run"),
    ("unknown key", RUN_X, experiment(learning_rate=0.1), "unknown key 'learning_rate'"),
    ("lr: '1e-3' quoted", RUN_X, registry_text(
        "experiments:\n  x: {model: persistent, seeds: [1], lr: '1e-3'}\n"),
     "'lr'.*without quotes"),
    ("lr: nan", RUN_X, experiment(lr=math.nan), "'lr'.*finite"),
    ("lr: inf", RUN_X, experiment(lr=math.inf), "'lr'.*finite"),
    ("lr negative", RUN_X, experiment(lr=-0.1), r"'lr'.*\(0, inf\)"),
    ("label_smoothing: 5", RUN_X, experiment(label_smoothing=5), r"'label_smoothing'.*\[0, 1\)"),
    ("warmup negative", RUN_X, experiment(warmup_epochs=-2), "'warmup_epochs'"),
    ("epochs: 2.5", RUN_X, experiment(epochs=2.5), "'epochs'.*integer"),
    ("batch_size: true", RUN_X, experiment(batch_size=True), "'batch_size'.*integer"),
    ("refit: 'yes'", RUN_X, experiment(refit="yes"), "'refit'.*true or false"),
    ("mask fraction 1.5", RUN_X, experiment(mask_new_locations_after=1.5),
     "'mask_new_locations_after'"),
    ("weight_average: 1", RUN_X, experiment(weight_average=1), "'weight_average'"),
    ("patience: 0", RUN_X, experiment(patience=0), "'patience'"),
    ("model_options a list", RUN_X, experiment(model_options=[1, 2]), "'model_options'"),
    ("placeholder typo", ["run", "x", "--quick"],
     experiment(model="ensemble", **{"model.members": ["{checkpoint}/x/seed_{seed}.safetensors"]}),
     r"bad placeholder \('checkpoint'\)"),
    ("unpaired brace", RUN_X, experiment(**{"model.members": ["{seed"]}),
     "bad placeholder"),
    ("unknown search", RUN_X, experiment(search="nope"), "search 'nope' is not in 'searches:'"),
    ("unknown epochs_from", RUN_X, experiment(epochs_from="nope"), "epochs_from 'nope'"),
    ("experiment name ../evil", ["run", "../evil", "--quick"],
     registry(experiments={"../evil": X}), "plain name"),
    ("notebook as a path", RUN_X, experiment(notebook="../../x"), "notebook must name"),
    ("notebook missing", RUN_X, experiment(notebook="nope"), "notebook template .*nope.ipynb"),
    ("accuracy in percent", RUN_X, experiment(prior_report_acc1=37.9), "fraction in"),
    ("ablation of no experiment", RUN_X, registry(ablations={"nope": {"seeds": [1],
                                                                       "without": ["a"]}}),
     "'nope' is not an experiment"),
    ("ablation without: a", RUN_X, registry(ablations={"x": {"seeds": [1], "without": "a"}}),
     "without"),
    ("ablation seeds: 1", RUN_X, registry(ablations={"x": {"seeds": 1, "without": ["a"]}}),
     "seeds must be a list"),
    # models, checked before any kernel starts
    ("unknown model", RUN_X, experiment(model="nope"), "unknown model 'nope'"),
    ("unknown model option", RUN_X, experiment(model="baseline", **{"model.width": 3}),
     r"has no option\(s\) \['width'\]"),
    ("option of the wrong type", RUN_X, experiment(model="baseline", **{"model.dim": "big"}),
     "cannot be built"),
    ("model over budget", RUN_X, experiment(model="baseline", **{"model.dim": 512}),
     "over the budget"),
    # command-line options
    ("--jobs 0", ["run", "x", "--quick", "--jobs", "0"], nothing, "--jobs: must be at least 1, got 0"),
    ("--jobs -3", ["run", "x", "--quick", "--jobs", "-3"], nothing, "--jobs: must be at least 1, got -3"),
    ("--jobs many", ["run", "x", "--quick", "--jobs", "many"], nothing, "not an integer"),
    ("--seeds -1", ["run", "x", "--quick", "--seeds", "-1"], nothing, "--seeds: must be at least 0, got -1"),
    ("search --jobs 0", ["search", "s", "--jobs", "0"], nothing, "--jobs/--workers: must be at least 1"),
    ("unknown experiment", ["run", "nope", "--quick"], nothing, r"unknown experiment\(s\)"),
    ("--previous-day 0", ["data", "summary", "--previous-day", "0"], nothing,
     "must be at least 1"),
    ("--previous-day 10**20", ["data", "summary", "--previous-day", "1" + "0" * 20], nothing,
     "must be at most 3650"),
    # results/metrics.csv
    ("truncated metrics line", ["tables"], metrics_line(2, ROW_TEXT[:25]),
     r"metrics.csv line 2: \d+ fields, the header has 16"),
    ("garbled metrics value", ["tables"], metrics_value("test_acc1", "abc"),
     "metrics.csv line 2: test_acc1 must be a fraction"),
    ("accuracy above 1", ["tables"], metrics_value("test_acc1", 55.3), "test_acc1 must be"),
    ("empty seed", ["tables"], metrics_value("seed", None), "seed must be an integer"),
    ("5 MB metrics line", ["tables"], metrics_line(2, "x" * 5_000_000), "metrics.csv line 2"),
    ("metrics header lacks a column", ["tables"], lambda root: (
        root / "results" / "metrics.csv").write_text("experiment,seed\nx,1\n"), "lacks column"),
    ("metrics not UTF-8", ["tables"], lambda root: (root / "results" / "metrics.csv")
     .write_bytes(b"\xff\xfe" * 10), "not UTF-8"),
    ("truncated metrics, full run", ["run", "x"], metrics_line(2, ROW_TEXT[:25]),
     "metrics.csv line 2"),
    # search tables
    ("garbled search line", ["run", "tuned", "--quick"], search_text(SEARCH_CSV + "oops\n"),
     r"s.csv line 3: 1 fields"),
    ("search header only", ["run", "tuned", "--quick"], search_text(SEARCH_CSV.split("\n")[0]),
     "no finished trials yet"),
    ("search score not a number", ["run", "tuned", "--quick"],
     search_text(SEARCH_CSV.replace(",0.3,", ",high,")), "val_acc1 must be a fraction"),
    ("search with only pruned trials", ["run", "tuned", "--quick"],
     search_text(SEARCH_CSV.replace(",0.3,", ",,")), "no finished trials yet"),
    ("search trial not JSON", ["run", "tuned", "--quick"],
     search_text(SEARCH_CSV.replace('"{""lr"": 0.001}"', "lr=0.001")), "trial must be a JSON"),
    ("garbled search table, tables", ["tables"], search_text(SEARCH_CSV + "oops\n"),
     r"s.csv line 3"),
    ("garbled archived table, tables", ["tables"], lambda root: (
        root / "results" / "superseded" / "old" / "metrics.csv").write_text(
            ",".join(GOOD_ROW) + "\n" + ROW_TEXT[:30] + "\n"), r"old/metrics.csv line 2"),
    ("archive without its table, tables", ["tables"], lambda root: (
        root / "results" / "superseded" / "old" / "metrics.csv").unlink(),
     "an archive without its metrics.csv"),
    # archive
    ("archive --as ../../x", ["archive", "x", "--as", "../../x"], nothing, "plain name"),
    ("archive --as /tmp/x", ["archive", "x", "--as", "/tmp/x"], nothing, "plain name"),
    ("archive --as a/b", ["archive", "x", "--as", "a/b"], nothing, "plain name"),
    ("archive --as ..", ["archive", "x", "--as", ".."], nothing, "plain name"),
    ("archive over a label", ["archive", "x", "--as", "old"], nothing, "exists already"),
    ("archive of no runs", ["archive", "nope", "--as", "v1"], nothing, "no runs of 'nope'"),
    ("archive, garbled metrics", ["archive", "x", "--as", "v1"],
     metrics_line(2, ROW_TEXT[:25]), "metrics.csv line 2"),
    # data
    ("data folder missing", ["data", "summary"], nothing, "NEXTLOC_DATA"),
]
READ_ONLY_CASES = [
    ("read-only results/, archive", ["archive", "x", "--as", "v1"], "Permission denied"),
    ("read-only results/, full run", ["run", "x"], "results/ is not writable"),
]
assert len(CASES) + len(READ_ONLY_CASES) >= 40


@pytest.mark.parametrize("case_id, argv, change, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_on_the_command_line(forked_cli, data_env, tmp_path, case_id, argv, change,
                                       expected):
    root = full_project(tmp_path / "project")
    change(root)
    before = snapshot(root)
    env = dict(data_env)
    if case_id == "data folder missing":
        env["NEXTLOC_DATA"] = str(tmp_path / "nowhere")
    code, out, err = forked_cli(root, *argv, env=env)
    check_clean_failure(code, out, err, expected)
    assert snapshot(root) == before
    assert not (root / "notebooks" / "hacked").exists()


@pytest.mark.parametrize("case_id, argv, expected", READ_ONLY_CASES,
                         ids=[c[0] for c in READ_ONLY_CASES])
def test_read_only_results_on_the_command_line(forked_cli, data_env, tmp_path, case_id, argv,
                                               expected):
    root = full_project(tmp_path / "project")
    before = snapshot(root)
    code, out, err = forked_cli(root, *argv, env=data_env, fault="read-only results")
    check_clean_failure(code, out, err, expected)
    assert snapshot(root) == before



# --- the same kinds of input through the library --------------------------------------------

def garble_metrics(root):
    metrics_line(2, ROW_TEXT[:25])(root)


def corrupt_checkpoint(root):
    path = root / "runs" / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    return path


def api(call, change=nothing):
    return call, change


API_CASES = {
    "TrainConfig lr as text": api(lambda root: TrainConfig(lr="1e-3")),
    "TrainConfig lr nan": api(lambda root: TrainConfig(lr=math.nan)),
    "TrainConfig label_smoothing 1": api(lambda root: TrainConfig(label_smoothing=1.0)),
    "TrainConfig warmup -1": api(lambda root: TrainConfig(warmup_epochs=-1)),
    "TrainConfig epochs 2.5": api(lambda root: TrainConfig(epochs=2.5)),
    "TrainConfig seed -1": api(lambda root: TrainConfig(seed=-1)),
    "TrainConfig refit 'no'": api(lambda root: TrainConfig(refit="no")),
    "TrainConfig max_batches 0": api(lambda root: TrainConfig(max_batches=0)),
    "TrainConfig num_threads 0": api(lambda root: TrainConfig(num_threads=0)),
    "TrainConfig model_options None": api(lambda root: TrainConfig(model_options=None)),
    "train_config lr 'abc'": api(lambda root: train_config({"lr": "abc"})),
    "papermill seed as text": api(lambda root: train_and_record_seed("x", "1", quick=True)),
    "papermill quick as text": api(lambda root: train_and_record_seed("x", 1, quick="False")),
    "papermill experiment as list": api(lambda root: train_and_record_seed(["x"], 1)),
    "run_all jobs 0": api(lambda root: run_all(["x"], quick=True, jobs=0)),
    "run_all jobs True": api(lambda root: run_all(["x"], quick=True, jobs=True)),
    "run_search jobs 0": api(lambda root: run_search("s", jobs=0)),
    "archive label ../x": api(lambda root: archive_runs("x", "../x")),
    "archive label absolute": api(lambda root: archive_runs("x", str(root / "elsewhere"))),
    "archive label empty": api(lambda root: archive_runs("x", "")),
    "record a NaN accuracy": api(lambda root: record_metrics({**GOOD_ROW, "test_acc1": math.nan})),
    "record a row without n_params": api(lambda root: record_metrics(
        {k: v for k, v in GOOD_ROW.items() if k != "n_params"})),
    "record into a garbled table": api(lambda root: record_metrics(GOOD_ROW), garble_metrics),
    "read a garbled table": api(lambda root: read_metrics(), garble_metrics),
    "best trial of a garbled search": api(lambda root: best_trial("s"),
                                          search_text(SEARCH_CSV + "x,y\n")),
    "corrupted checkpoint": api(lambda root: load_checkpoint(root / "runs" / "bad.safetensors"),
                                corrupt_checkpoint),
    "missing checkpoint": api(lambda root: load_checkpoint(root / "runs" / "none.safetensors")),
    "!!python tag": api(lambda root: parse_yaml("a: !!python/name:os.system", "x.yaml")),
    "placeholder typo": api(lambda root: fill_placeholders("{checkpoint}/a", {"seed": 1})),
    "model option of the wrong type": api(lambda root: build_model("baseline", 10, 3, dim="big")),
    "seeds: 42": api(lambda root: load_registry(), experiment(seeds=42)),
    "epochs_from with missing seeds": api(lambda root: epochs_from("x"),
                                          metrics_value("seed", 2)),
}


@pytest.mark.parametrize("case_id", list(API_CASES))
def test_bad_input_through_the_api(project, case_id):
    call, change = API_CASES[case_id]
    populate(project)
    change(project)
    before = snapshot(project)
    with pytest.raises(NextlocError) as error:
        call(project)
    assert type(error.value) in (ConfigError, ResultsError, DataError, TrainingError)
    assert len(str(error.value)) < 600
    assert snapshot(project) == before
