"""The command line: what it prints, and bad input ending in one error line and exit code 2."""
from __future__ import annotations

import json

import pytest
import yaml

from project_tools import registry_file

import nextloc.core.paths
import nextloc.experiments.preflight
import nextloc.experiments.runner
from nextloc.cli import main
from nextloc.data.split import STAYPOINTS_FILE, default_data_dir


@pytest.mark.slow
def test_data_summary_json_on_the_real_data(tmp_path, monkeypatch, capsys):
    if not default_data_dir().is_dir():
        pytest.skip(f"real Geolife data not found at {default_data_dir()}; set NEXTLOC_DATA to "
                    f"the folder holding {STAYPOINTS_FILE} to run this test")
    monkeypatch.setenv("NEXTLOC_CACHE", str(tmp_path / "cache"))
    assert main(["data", "summary", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"train": 7424, "validation": 3334, "test": 3502,
                               "num_classes": 1187, "num_users": 45}
    assert err == ""


def test_missing_data_folder_is_one_error_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEXTLOC_DATA", str(tmp_path / "nowhere"))
    assert main(["data", "summary", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("nextloc: error:")
    assert "NEXTLOC_DATA" in lines[0] and "nowhere" in lines[0]


@pytest.fixture
def no_notebooks(tmp_path, monkeypatch):
    """A temporary registry, and notebook execution that fails the test if it is ever reached."""
    path = registry_file(tmp_path)
    path.write_text(yaml.safe_dump({"experiments": {
        "known": {"model": "persistent", "seeds": [42]}}}))
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", path.parent)

    def forbidden(*args, **kwargs):
        pytest.fail("a notebook was executed")

    monkeypatch.setattr(nextloc.experiments.runner, "execute", forbidden)
    monkeypatch.setattr(nextloc.experiments.runner.Jobs, "run", forbidden)


@pytest.mark.parametrize("names", [["no_such_experiment"], ["known", "no_such_experiment"]])
def test_run_of_an_unknown_experiment_fails_before_running_anything(no_notebooks, capsys, names):
    assert main(["run", *names, "--quick"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("nextloc: error:")
    assert "no_such_experiment" in lines[0]
    assert out == ""


@pytest.mark.parametrize("teacher_runs_too", [False, True])
def test_run_whose_teacher_checkpoints_are_missing_fails_before_running_anything(
        no_notebooks, tmp_path, monkeypatch, capsys, teacher_runs_too):
    monkeypatch.setattr(nextloc.core.paths, "RUN_SCRATCH", tmp_path / "runs")
    checked = []
    monkeypatch.setattr(nextloc.experiments.preflight, "check_model",
                        lambda *args: checked.append(args[0]))
    (nextloc.core.paths.REGISTRY_DIR / "main.yaml").write_text(yaml.safe_dump({"experiments": {
        "teacher": {"model": "pointer", "seeds": [42]},
        "student": {"model": "pointer_ensemble", "seeds": [42], "model.distill": 0.5,
                    "model.teacher": ["{checkpoints}/teacher/seed_42.safetensors"]}}},
        sort_keys=False))
    names = ["teacher", "student"] if teacher_runs_too else ["student"]
    if teacher_runs_too:  # the checkpoint comes from a run of the same command: no error
        monkeypatch.setattr(nextloc.experiments.runner, "run_experiments", lambda *args: None)
        assert main(["run", *names, "--quick"]) == 0
        assert checked == names
        return
    assert main(["run", *names, "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "teacher/seed_42.safetensors" in err[0]
    assert "nextloc run teacher --quick" in err[0]


@pytest.mark.parametrize("command", [["run", "known"], ["search", "pointer"]])
def test_registry_runs_on_another_dataset_are_refused(no_notebooks, tmp_path, capsys, command):
    # results/ holds the report's runs on the shared Geolife data: another dataset may only be
    # looked at with --quick, or trained with `nextloc train`.
    assert main([*command, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--quick" in err and "nextloc train --data DIR" in err


def test_quick_run_with_data_hands_the_folder_to_the_runs(no_notebooks, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(nextloc.experiments.runner, "run_all", lambda *a, project, **k: seen.update(
        data=project.data))
    monkeypatch.setenv("NEXTLOC_DATA", "elsewhere")
    assert main(["run", "known", "--quick", "--data", str(tmp_path)]) == 0
    assert seen == {"data": tmp_path.resolve()}
    assert __import__("os").environ["NEXTLOC_DATA"] == "elsewhere"  # no kernel reads it instead


def test_search_without_names_runs_every_search_in_registry_order(tmp_path, monkeypatch):
    import pandas as pd

    import nextloc.search.run

    path = registry_file(tmp_path)
    path.write_text(yaml.safe_dump({"experiments": {}, "searches": {
        name: {"base": {"model": "pointer"}, "points": [{}]} for name in ("b", "a", "c")}},
        sort_keys=False))
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", path.parent)
    ran = []

    def fake_search(name, jobs, storage, data):
        ran.append(name)
        return pd.DataFrame({"trial": [0], "value": [0.5]})

    monkeypatch.setattr(nextloc.search.run, "run_search", fake_search)
    assert main(["search", "--jobs", "1"]) == 0
    assert ran == ["b", "a", "c"]


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`nextloc data summary --json | head -c 10`: no traceback, no error line, exit 0."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "nextloc", "data", "summary", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written
    stderr = process.stderr.read().decode()
    assert process.wait() == 0
    assert stderr == ""
