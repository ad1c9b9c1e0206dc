"""Protocol-B twins (``refit_of: X``) are generated exactly as they used to be written out: X's
settings and seeds, ``refit: true``, ``epochs_from: X``, the twin's own description and
overrides, in the twin's place in the registry."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from nextloc.core import paths
from nextloc.core.errors import ConfigError
from nextloc.experiments.registry import read_registry
from nextloc.experiments.registry_files import read_registry_files

# The last commit whose registry spelled every twin out.
WRITTEN_OUT = "7abe259"


def registry_of(tmp_path, experiments: dict) -> dict:
    (tmp_path / "main.yaml").write_text(yaml.safe_dump(
        {"seed_sets": {"two": [1, 2]}, "experiments": experiments}, sort_keys=False))
    return read_registry_files(tmp_path)["experiments"]


def test_a_twin_is_its_experiment_refit_in_its_own_place(tmp_path):
    experiments = registry_of(tmp_path, {
        "teacher": {"model": "markov", "seeds": [1]},
        "teacher_refit": {"refit_of": "teacher", "description": "b"},
        "student": {"model": "pointer", "search": "s", "model.dim": 8, "seeds": "two",
                    "model.teacher": {"runs_of": "teacher"}, "description": "a"},
        "other": {"model": "markov", "seeds": [1]},
        "student_refit": {"refit_of": "student", "model.teacher": {"runs_of": "teacher_refit"},
                          "description": "the same, protocol B"}})
    assert list(experiments) == ["teacher", "teacher_refit", "student", "other", "student_refit"]
    twin = experiments["student_refit"]
    assert twin == {"model": "pointer", "search": "s", "model.dim": 8, "refit": True,
                    "epochs_from": "student", "seeds": [1, 2],
                    "model.teacher": ["{checkpoints}/teacher_refit/seed_1.safetensors"],
                    "description": "the same, protocol B"}
    assert list(twin) == ["model", "search", "model.dim", "model.teacher", "refit",
                          "epochs_from", "seeds", "description"]
    assert experiments["teacher_refit"] == {"model": "markov", "refit": True,
                                            "epochs_from": "teacher", "seeds": [1],
                                            "description": "b"}


@pytest.mark.parametrize("base", ["missing", "a_refit", ["a"]])
def test_a_twin_of_no_written_out_experiment_is_one_clear_error(tmp_path, base):
    with pytest.raises(ConfigError, match="refit_of .* is not an experiment of the registry"):
        registry_of(tmp_path, {"a": {"model": "markov", "seeds": [1]},
                               "a_refit": {"refit_of": "a"}, "b": {"refit_of": base}})


def test_the_report_registry_is_the_one_that_spelled_every_twin_out(tmp_path):
    """Every experiment of the registry at WRITTEN_OUT keeps its settings, in the same order, now
    that its twins are generated (seed sets grow as seeds are added, so they are left out). A
    guard for that change: it goes once a setting of that commit changes on purpose."""
    listing = subprocess.run(["git", "ls-tree", "--name-only", WRITTEN_OUT, "experiments/"],
                             cwd=paths.PROJECT_ROOT, capture_output=True, text=True)
    if listing.returncode or not listing.stdout.strip():
        pytest.skip(f"commit {WRITTEN_OUT} is not in this clone")
    for name in listing.stdout.split():
        text = subprocess.run(["git", "show", f"{WRITTEN_OUT}:{name}"], cwd=paths.PROJECT_ROOT,
                              capture_output=True, text=True, check=True).stdout
        (tmp_path / name.removeprefix("experiments/")).write_text(text)
    before = read_registry(tmp_path)["experiments"]
    now = read_registry(paths.REGISTRY_DIR)["experiments"]
    assert [n for n in now if n in before] == list(before)
    def settings(spec: dict) -> dict:
        return {key: value for key, value in spec.items() if key != "seeds"}

    assert {n: settings(now[n]) for n in before} == {n: settings(before[n]) for n in before}
