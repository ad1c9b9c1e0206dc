"""Bad and hostile inputs, round two (issue 23): half-written results, stamps that lie, dataset
folders read wrongly, options that crash instead of failing cleanly. Each case ends in one short
``nextloc: error: ...`` line with exit code 2 and no traceback, and no file of the project or
dataset changes. Cases go through the command line where a user meets them (forked, as in
tests/test_bad_inputs.py, or ``main`` in this process when a fault must be injected)."""
from __future__ import annotations

import errno
import json
import math

import pandas as pd
import pytest
import yaml

from project_tools import ForkedCli, GOOD_ROW, REGISTRY, full_project, registry_file, snapshot
from project_tools import check_clean_failure

from nextloc.cli import main


@pytest.fixture(scope="module")
def forked_cli():
    return ForkedCli()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- 1. half-written or overwritten results ---------------------------------------------------

def fake_preprocessed():
    from nextloc.preprocess.pipeline import OUTPUT_COLUMNS, Preprocessed

    table = pd.DataFrame({c: [1, 2] for c in OUTPUT_COLUMNS}).assign(valid=[True, False])
    locations = pd.DataFrame({"id": [1], "lon": [116.3], "lat": [39.9]})
    return Preprocessed(None, None, pd.DataFrame({"source_user": [1]}), table, locations,
                        {"final_staypoints": 2}, {"read": 0.1})


def test_preprocess_that_fails_half_way_leaves_the_previous_folder(tmp_path, monkeypatch,
                                                                    capsys):
    """A full disk while writing locations.csv: the previous run's folder stays whole, not new
    staypoints beside old locations, and no temporary folder is left behind."""
    import nextloc.preprocess.pipeline as preprocess

    out = tmp_path / "data"
    out.mkdir()
    for name in preprocess.OUTPUT_FILES + ["my_notes.txt"]:
        (out / name).write_text(f"previous {name}\n")
    before = snapshot(tmp_path)
    monkeypatch.setattr(preprocess, "run_pipeline", lambda *a, **k: fake_preprocessed())
    original = pd.DataFrame.to_csv

    def disk_full(frame, path, *args, **kwargs):
        if str(path).endswith("locations.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return original(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    code, out_text, err = cli(capsys, "preprocess", str(tmp_path), "--out", str(out), "--quiet")
    check_clean_failure(code, out_text, err, "No space left on device.*unchanged")
    assert snapshot(tmp_path) == before

    monkeypatch.setattr(pd.DataFrame, "to_csv", original)  # the disk has room again
    assert cli(capsys, "preprocess", str(tmp_path), "--out", str(out), "--quiet")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (out / "my_notes.txt").read_text() == "previous my_notes.txt\n"
    assert json.loads((out / "preprocess.json").read_text())["counts"] == {"final_staypoints": 2}


@pytest.mark.parametrize("option, value", [("--repeats", "-1"), ("--repeats", "0"),
                                           ("--steps", "0"), ("--steps", "-5")])
def test_benchmark_speed_refuses_counts_below_one(forked_cli, tmp_path, option, value):
    root = full_project(tmp_path / "project")
    before = snapshot(root)
    code, out, err = forked_cli(root, "benchmark", "speed", option, value)
    check_clean_failure(code, out, err, f"{option}: must be at least 1")
    assert snapshot(root) == before


def test_benchmark_speed_never_writes_a_non_finite_time(project, monkeypatch):
    import nextloc.speed as speed
    from nextloc.core.errors import NextlocError

    path = project / "results" / "benchmarks" / "training.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"committed": 1}\n')
    monkeypatch.setattr(speed, "run_benchmark", lambda **_: {"step": math.inf})
    monkeypatch.setattr(speed, "check_can_measure", lambda experiments: None)
    with pytest.raises(NextlocError, match="non-finite"):
        speed.write_benchmark(experiments=["x"], steps=1, repeats=1)
    with pytest.raises(NextlocError, match="repeats must be an integer >= 1"):
        speed.write_benchmark(experiments=["x"], steps=1, repeats=-1)
    assert path.read_text() == '{"committed": 1}\n'


def test_tables_refuse_an_over_budget_headline(forked_cli, tmp_path):
    root = full_project(tmp_path / "project")
    registry = {**REGISTRY, "experiments": {**REGISTRY["experiments"],
                                            "xr": {"model": "persistent", "seeds": [1],
                                                   "refit": True}},
                "headline": {"train_only": "x", "refit": "xr"}}
    registry_file(root).write_text(yaml.safe_dump(registry))
    pd.DataFrame([{**GOOD_ROW, "n_params": 9_000_000},
                  {**GOOD_ROW, "experiment": "xr", "n_params": 9_000_000}]).to_csv(
        root / "results" / "metrics.csv", index=False)
    (root / "README.md").write_text("<!-- headline: written by `nextloc tables` -->\nold\n"
                                    "<!-- /headline -->\n")
    before = snapshot(root)
    code, out, err = forked_cli(root, "tables")
    check_clean_failure(code, out, err, "headline train_only 'x' has 9,000,000 parameters")
    assert snapshot(root) == before


# --- 2. stamps that lie -----------------------------------------------------------------------

def test_a_stamp_covers_the_dataset_and_the_notebook(project, monkeypatch, tmp_path,
                                                      tiny_data_dir):
    """A quick run on one dataset is not "up to date" for another, nor after its notebook
    template changed; a full run's stamp from before these fields still counts."""
    import shutil

    from project_tools import populate
    from project_tools import fake_notebook

    from nextloc.experiments.runner import is_up_to_date, run_one, stamp_path

    populate(project)
    fake_notebook(project, monkeypatch)
    monkeypatch.setenv("NEXTLOC_DATA", str(tiny_data_dir))
    run_one("x", {"model": "persistent", "seeds": [1]}, 1, quick=True)
    assert is_up_to_date("x", 1, quick=True)
    copy = tmp_path / "copy-of-the-data"
    shutil.copytree(tiny_data_dir, copy)
    monkeypatch.setenv("NEXTLOC_DATA", str(copy))
    assert is_up_to_date("x", 1, quick=True)  # the same files elsewhere: the same dataset
    with open(copy / "staypoints.csv", "a") as handle:
        handle.write("999,1,3,10.0,49,49,600,610,0\n")
    assert not is_up_to_date("x", 1, quick=True)
    monkeypatch.setenv("NEXTLOC_DATA", str(tiny_data_dir))
    assert is_up_to_date("x", 1, quick=True)
    template = project / "notebooks" / "train.ipynb"
    template.write_text(template.read_text().replace("\n", "\n ", 1))
    assert not is_up_to_date("x", 1, quick=True)

    old_full_stamp = stamp_path("x", 1, False)  # a committed stamp, made before `inputs`
    old_full_stamp.parent.mkdir(parents=True, exist_ok=True)
    from nextloc.experiments.registry import config_hash, run_settings

    old_full_stamp.write_text(json.dumps({"config_hash": config_hash(
        run_settings("x", 1, False), 1), "quick": False}))
    (project / "book" / "runs" / "x" / "seed_1.ipynb").write_text("{}")
    assert is_up_to_date("x", 1, quick=False)


def test_the_data_folder_of_the_command_reaches_the_notebook_and_the_stamp(
        project, monkeypatch, tmp_path, tiny_data_dir):
    """``--data`` travels as an argument: the notebook's ``data`` parameter and the stamp's
    dataset identity follow it, whatever $NEXTLOC_DATA says."""
    from project_tools import populate

    import nextloc.experiments.runner
    from nextloc.experiments.project import Project
    from nextloc.experiments.runner import is_up_to_date, run_one

    populate(project)
    parameters = []

    def execute(template, output, title, given, jobs=None):
        parameters.append(given)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("{}")

    monkeypatch.setattr(nextloc.experiments.runner, "execute", execute)
    monkeypatch.setenv("NEXTLOC_DATA", str(tmp_path / "nowhere"))
    run_one("x", {"model": "persistent", "seeds": [1]}, 1, quick=True, data=tiny_data_dir)
    assert parameters[0]["data"] == str(tiny_data_dir)
    assert is_up_to_date("x", 1, quick=True, project=Project(data=tiny_data_dir))
    assert not is_up_to_date("x", 1, quick=True)  # $NEXTLOC_DATA's folder holds no dataset


@pytest.mark.parametrize("key, value", [("device", "cuda"), ("num_threads", 8)])
def test_registry_settings_a_run_cannot_honour_are_refused(forked_cli, tmp_path, key, value):
    root = full_project(tmp_path / "project")
    registry = {**REGISTRY, "experiments": {**REGISTRY["experiments"],
                                            "x": {"model": "persistent", "seeds": [1],
                                                  key: value}}}
    registry_file(root).write_text(yaml.safe_dump(registry))
    before = snapshot(root)
    code, out, err = forked_cli(root, "run", "x", "--quick")
    check_clean_failure(code, out, err, f"'{key}' cannot be set in the registry")
    assert snapshot(root) == before


def test_train_config_file_refuses_device(tmp_path, capsys):
    config = tmp_path / "settings.yaml"
    config.write_text("model: persistent\ndevice: cuda\n")
    code, out, err = cli(capsys, "train", "--config", str(config))
    check_clean_failure(code, out, err, r"\['device'\] are not settings of a file; pass --device")


# --- 3. dataset folders read wrongly ----------------------------------------------------------

def staypoints_change(change):
    """A dataset folder whose staypoints are the tiny ones changed by ``change``."""
    def make(folder):
        from conftest import make_staypoints

        staypoints, valid_ids = make_staypoints()
        change(staypoints).to_csv(folder / "staypoints.csv", index=False)
        pd.DataFrame({"id": valid_ids}).to_csv(folder / "valid_ids.csv", index=False)
    return make


def duplicated_column(folder):
    staypoints_change(lambda s: s)(folder)
    lines = (folder / "staypoints.csv").read_text().splitlines()
    (folder / "staypoints.csv").write_text("\n".join(
        [lines[0] + ",user_id"] + [line + ",7" for line in lines[1:]]) + "\n")


def companion(name, kind):
    def make(folder):
        import os

        staypoints_change(lambda s: s)(folder)
        (folder / name).unlink(missing_ok=True)
        if kind == "dangling":
            (folder / name).symlink_to(folder / "nowhere.csv")
        elif kind == "pipe":
            os.mkfifo(folder / name)
        else:
            (folder / name).mkdir()
    return make


DATA_CASES = [
    ("all stays on one day", staypoints_change(lambda s: s.assign(start_day=0, end_day=0)),
     "no stay falls in the training period"),
    ("duplicated column", duplicated_column, r"\['user_id'\] appear more than once"),
    ("negative location ids", staypoints_change(lambda s: s.assign(
        location_id=s["location_id"] - 5)), "'location_id' must be >= 0"),
    ("user id 2**40", staypoints_change(lambda s: s.assign(
        user_id=s["user_id"].replace(3, 2**40))), "user_id 1,099,511,627,776 is larger"),
    ("dangling valid_ids.csv", companion("valid_ids.csv", "dangling"),
     "valid_ids.csv: exists but is a dangling symbolic link"),
    ("valid_ids.csv a pipe", companion("valid_ids.csv", "pipe"),
     "valid_ids.csv: exists but is not a regular file"),
    ("locations.csv a pipe", companion("locations.csv", "pipe"),
     "locations.csv: exists but is not a regular file"),
    ("dangling locations.csv", companion("locations.csv", "dangling"),
     "locations.csv: exists but is a dangling"),
    ("preprocess.json a pipe", companion("preprocess.json", "pipe"),
     "preprocess.json: exists but is not a regular file"),
    ("preprocess.json a folder", companion("preprocess.json", "folder"),
     "preprocess.json: exists but is a folder"),
]


@pytest.mark.parametrize("case_id, make, expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_dataset_folder(forked_cli, tmp_path, case_id, make, expected):
    root = full_project(tmp_path / "project")
    data = tmp_path / "data"
    data.mkdir()
    make(data)
    before = snapshot(data)
    code, out, err = forked_cli(root, "data", "summary", "--data", str(data),
                                env={"NEXTLOC_CACHE": str(tmp_path / "cache")})
    check_clean_failure(code, out, err, expected)
    assert snapshot(data) == before


def summary(forked_cli, tmp_path, data) -> dict:
    root = tmp_path / "project"
    if not root.exists():
        full_project(root)
    code, out, err = forked_cli(root, "data", "summary", "--json", "--data", str(data),
                                env={"NEXTLOC_CACHE": str(tmp_path / "cache")})
    assert code == 0, err
    return json.loads(out)


def test_days_not_starting_at_zero_are_shifted_and_said(forked_cli, tmp_path):
    """User 2's days counted from day 100: the split is the same as from 0, with a note."""
    plain, shifted = tmp_path / "plain", tmp_path / "shifted"
    plain.mkdir(), shifted.mkdir()
    staypoints_change(lambda s: s)(plain)
    staypoints_change(lambda s: s.assign(start_day=s["start_day"] + 100 * (s["user_id"] == 2),
                                         end_day=s["end_day"] + 100 * (s["user_id"] == 2)))(
        shifted)
    expected, got = summary(forked_cli, tmp_path, plain), summary(forked_cli, tmp_path, shifted)
    assert {k: got[k] for k in ("train", "validation", "test")} == \
        {k: expected[k] for k in ("train", "validation", "test")}
    assert "the days of 1 user(s) did not start at 0" in " ".join(got["notes"])


def test_a_locations_file_covering_few_places_is_noted(forked_cli, tmp_path):
    from conftest import make_locations

    data = tmp_path / "data"
    data.mkdir()
    staypoints_change(lambda s: s)(data)
    make_locations().iloc[:3].to_csv(data / "locations.csv", index=False)
    notes = " ".join(summary(forked_cli, tmp_path, data)["notes"])
    assert "no coordinates for 10 of the 13 places seen in training (covers 3)" in notes


# --- 4. options checked before anything is built ----------------------------------------------

from test_bad_inputs_end_in_one_line import data_env  # noqa: E402,F401 (a fixture: the tiny dataset)


def with_registry(experiments=None, searches=None):
    def change(root):
        registry = {"experiments": {**REGISTRY["experiments"], **(experiments or {})},
                    "searches": {**REGISTRY["searches"], **(searches or {})}}
        registry_file(root).write_text(yaml.safe_dump(registry))
    return change


def model(**options):
    return with_registry({"x": {"model": "baseline", "seeds": [1],
                                **{f"model.{k}": v for k, v in options.items()}}})


def pipe(root):
    import os

    os.mkfifo(root / "settings.yaml")


def duplicated_row(root):
    pd.DataFrame([GOOD_ROW, GOOD_ROW]).to_csv(root / "results" / "metrics.csv", index=False)


def not_a_database(root):
    (root.parent / "junk.db").write_text("not a database " * 100)


RUN_X = ["run", "x", "--quick"]
OPTION_CASES = [
    ("dim 0", RUN_X, model(dim=0), "option dim must be a whole number in \\[1,"),
    ("dim negative", RUN_X, model(dim=-4), "option dim must be a whole number"),
    ("dim 1e7", RUN_X, model(dim=1e7), "option dim must be a whole number"),
    ("dim not divisible by heads", RUN_X, model(dim=30, heads=4),
     "dim 30 must be a multiple of heads 4"),
    ("layers 0", RUN_X, model(layers=0), "option layers must be a whole number"),
    ("heads 0", RUN_X, model(heads=0), "option heads must be a whole number"),
    ("absurd dim, over budget allowed", ["run", "x_over_budget", "--quick"],
     with_registry({"x_over_budget": {"model": "baseline", "seeds": [1],
                                      "model.dim": 400_000}}),
     "would have at least .* more than nextloc builds even for an over-budget ablation"),
    ("trials 0", ["search", "s"], with_registry(searches={"s": {
        "seed": 0, "trials": 0, "base": {"model": "baseline"}, "space": {"lr": [0.001]}}}),
     "search 's': trials must be a whole number >= 1"),
    ("base_search cycle", ["search", "a"], with_registry(searches={
        "a": {"seed": 0, "base_search": "b", "base": {}, "points": [{"lr": 0.1}]},
        "b": {"seed": 0, "base_search": "a", "base": {}, "points": [{"lr": 0.1}]}}),
     r"base_search forms a cycle \(a -> b -> a\)"),
    ("base_search unknown", ["search", "a"], with_registry(searches={
        "a": {"seed": 0, "base_search": "nope", "base": {}, "points": [{"lr": 0.1}]}}),
     "base_search 'nope' is not a search"),
    ("search with num_threads", ["search", "s"], with_registry(searches={"s": {
        "seed": 0, "trials": 1, "base": {"model": "baseline", "num_threads": 64},
        "space": {"lr": [0.001]}}}), r"\['num_threads'\] cannot be set in a search"),
    ("storage folder missing", ["search", "s", "--storage", "sqlite:////nonexistent/x/s.db"],
     lambda root: None, "folder /nonexistent/x does not exist"),
    ("storage garbage URL", ["search", "s", "--storage", "garbage://"], lambda root: None,
     "--storage garbage://: Can't load plugin"),
    ("storage not a URL", ["search", "s", "--storage", "no url at all"], lambda root: None,
     "not a database URL"),
    ("storage :memory:", ["search", "s", "--storage", "sqlite:///:memory:"], lambda root: None,
     "in-memory SQLite database"),
    ("storage not a database", ["search", "s", "--storage", "sqlite:///../junk.db"],
     not_a_database, "cannot open the study's database \\(file is not a database\\)"),
    ("train --config /dev/zero", ["train", "--config", "/dev/zero"], lambda root: None,
     "/dev/zero: settings file not a regular file"),
    ("train --config a named pipe", ["train", "--config", "settings.yaml"], pipe,
     "settings.yaml: settings file not a regular file"),
    ("preprocess --config a named pipe", ["preprocess", ".", "--out", "out", "--config",
                                          "settings.yaml"], pipe,
     "options file not a regular file"),
    ("benchmark speed without a teacher's checkpoint", ["benchmark", "speed", "ens"],
     with_registry({"ens": {"model": "ensemble", "seeds": [1], "model.members": [
         "{checkpoints}/x/seed_{seed}.safetensors"]}}), "reads .*x/seed_42.safetensors, which "
     "does not exist"),
    ("benchmark speed of an experiment without runs", ["benchmark", "speed", "tuned"],
     lambda root: None, "'tuned' has no runs in results/metrics.csv"),
    ("benchmark speed outside a git clone", ["benchmark", "speed", "x"], lambda root: None,
     "benchmark speed: `git worktree add .*` failed: fatal: not a git repository"),
    ("benchmark speed of no experiment", ["benchmark", "speed", "nope"], lambda root: None,
     "unknown experiment 'nope'"),
    ("experiments reading each other's runs", ["run", "a", "--quick"], with_registry({
        name: {"model": "ensemble", "seeds": [1],
               "model.members": [f"{{checkpoints}}/{other}/seed_{{seed}}.safetensors"]}
        for name, other in (("a", "b"), ("b", "a"))}),
     r"experiments read each other's runs in a cycle \(a -> b -> a\)"),
    ("duplicated (experiment, seed) row", ["tables"], duplicated_row,
     r"metrics.csv lines 2 and 3: two rows for x seed 1"),
]


@pytest.mark.parametrize("case_id, argv, change, expected", OPTION_CASES,
                         ids=[c[0] for c in OPTION_CASES])
def test_bad_option(forked_cli, data_env, tmp_path, monkeypatch,  # noqa: F811
                    case_id, argv, change, expected):
    root = full_project(tmp_path / "project")
    change(root)
    before = snapshot(root)
    monkeypatch.chdir(root)  # relative paths (the pipe, the storage) as a user in the project
    code, out, err = forked_cli(root, *argv, env=data_env)
    check_clean_failure(code, out, err, expected)
    assert snapshot(root) == before


def test_thread_counts_are_capped_near_the_cpu_count():
    import os

    import torch

    from nextloc.core.device import set_threads
    from nextloc.core.errors import ConfigError
    from nextloc.training.settings import TrainConfig

    with pytest.raises(ConfigError, match="num_threads"):
        TrainConfig(num_threads=100_000)
    before = torch.get_num_threads()
    try:
        assert set_threads(4096) == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)


def write_plt(raw, latitudes):
    from synthetic_tracks import HEADER

    lines = [f"{lat},116.3,0,150,0,2008-10-06,08:{minute:02d}:00"
             for minute, lat in enumerate(latitudes)]
    path = raw / "000" / "Trajectory" / "20081006000000.plt"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + "\n".join(lines) + "\n")


def test_gps_fixes_off_the_globe_are_dropped_and_counted(tmp_path):
    from nextloc.preprocess import tracks

    write_plt(tmp_path, [39.9] * 7 + [999.0, -95.5, 516.0])
    fixes = tracks.read_geolife(tmp_path, progress=False)
    assert len(fixes) == 7 and fixes.attrs["outside_range"] == 3


def test_preprocess_of_fixes_all_off_the_globe_is_one_clear_error(tmp_path, capsys):
    write_plt(tmp_path / "raw", [999.0] * 5)
    code, out, err = cli(capsys, "preprocess", str(tmp_path / "raw"), "--out",
                         str(tmp_path / "out"), "--quiet")
    check_clean_failure(code, out, err, "none of the 5 GPS fixes has a latitude in -90..90")
    assert not (tmp_path / "out").exists()


def test_a_run_goes_after_the_runs_it_reads_whatever_the_registry_order(project):
    from nextloc.experiments.preflight import run_order
    from nextloc.experiments.registry import load_registry

    reader = {"model": "ensemble", "seeds": [1],
              "model.members": ["{checkpoints}/teacher/seed_{seed}.safetensors"]}
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "reader": reader, "other": {"model": "persistent", "seeds": [1]},
        "teacher": {"model": "persistent", "seeds": [1]}}}))
    experiments = load_registry()["experiments"]
    assert run_order(["reader", "other", "teacher"], experiments) == \
        ["teacher", "reader", "other"]
