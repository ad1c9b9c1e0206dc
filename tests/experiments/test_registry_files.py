"""The registry as one file per chapter (experiments/*.yaml): merged in the order of the file
names, a name defined twice refused naming both files, seed sets as a shorthand."""
from __future__ import annotations

import pytest
import yaml

from nextloc.core.errors import ConfigError
from nextloc.experiments.registry_files import read_registry_files

X = {"model": "markov", "seeds": [1]}


def write(folder, name, document):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(document, sort_keys=False))


def test_files_merge_in_the_order_of_their_names(tmp_path):
    write(tmp_path, "20-b.yaml", {"experiments": {"b": X}, "claims": [{"claim": "second"}]})
    write(tmp_path, "10-a.yaml", {"experiments": {"a": X}, "claims": [{"claim": "first"}],
                                  "headline": {"train_only": "a"}})
    registry = read_registry_files(tmp_path)
    assert list(registry["experiments"]) == ["a", "b"]
    assert [c["claim"] for c in registry["claims"]] == ["first", "second"]
    assert registry["headline"] == {"train_only": "a"}


def test_a_name_defined_in_two_files_is_refused_naming_both(tmp_path):
    write(tmp_path, "10-a.yaml", {"experiments": {"x": X}})
    write(tmp_path, "20-b.yaml", {"experiments": {"x": X}})
    with pytest.raises(ConfigError, match=r"'x' is defined twice, in 10-a.yaml and in 20-b.yaml"):
        read_registry_files(tmp_path)


def test_seed_sets_stand_for_their_seeds_everywhere_seeds_are_given(tmp_path):
    write(tmp_path, "10-seeds.yaml", {"seed_sets": {"three": [42, 123, 7], "two": [5, 6]}})
    write(tmp_path, "20-a.yaml", {
        "experiments": {"x": {"model": "pointer", "seeds": "three"}},
        "ablations": {"x": {"seeds": "two", "without": ["copy", {"user": {"seeds": "three"}}]}},
        "searches": {"s": {"seeds": "two", "base": {"model": "pointer"}}}})
    registry = read_registry_files(tmp_path)
    assert "seed_sets" not in registry
    assert registry["experiments"]["x"]["seeds"] == [42, 123, 7]
    assert registry["ablations"]["x"]["seeds"] == [5, 6]
    assert registry["ablations"]["x"]["without"][1]["user"]["seeds"] == [42, 123, 7]
    assert registry["searches"]["s"]["seeds"] == [5, 6]


def test_an_unknown_seed_set_is_refused(tmp_path):
    write(tmp_path, "10-a.yaml", {"seed_sets": {"three": [42, 123, 7]},
                                  "experiments": {"x": {"model": "markov", "seeds": "five"}}})
    with pytest.raises(ConfigError, match=r"experiment 'x': seeds 'five' is not a set"):
        read_registry_files(tmp_path)


def test_a_folder_without_registry_files_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="experiment registry not found"):
        read_registry_files(tmp_path)



def test_runs_of_stands_for_the_checkpoints_of_every_seed(tmp_path):
    write(tmp_path, "10-a.yaml", {
        "experiments": {"pair": {"model": "pointer", "seeds": [7, 3]},
                        "student": {"model": "pointer", "seeds": [1],
                                    "model.teacher": {"runs_of": "pair"}}},
        "searches": {"s": {"base": {"model": "pointer"},
                           "points": [{"model.teacher": {"runs_of": "pair"}}]}}})
    registry = read_registry_files(tmp_path)
    runs = ["{checkpoints}/pair/seed_7.safetensors", "{checkpoints}/pair/seed_3.safetensors"]
    assert registry["experiments"]["student"]["model.teacher"] == runs
    assert registry["searches"]["s"]["points"][0]["model.teacher"] == runs


def test_runs_of_an_unknown_experiment_is_refused(tmp_path):
    write(tmp_path, "10-a.yaml", {"experiments": {
        "student": {"model": "pointer", "seeds": [1], "model.teacher": {"runs_of": "nobody"}}}})
    with pytest.raises(ConfigError, match=r"student', model.teacher: runs_of 'nobody' is not"):
        read_registry_files(tmp_path)
