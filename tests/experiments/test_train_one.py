"""``nextloc train``: one model on any dataset folder, with the registry's headline settings or
a YAML file, metrics printed and nothing written to results/."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from nextloc.cli import main
from nextloc.data.split import build_dataset
from nextloc.core.paths import RESULTS_DIR
from nextloc.models import build_model, count_parameters
from nextloc.training.loop import train
from nextloc.training.settings import TrainConfig


@pytest.fixture
def folder(tmp_path, tiny_frames):
    """The tiny synthetic staypoints as a generic dataset folder (every id valid)."""
    path = tmp_path / "mine"
    path.mkdir()
    tiny_frames[0].to_csv(path / "staypoints.csv", index=False)
    return path


def run_json(capsys, *argv) -> dict:
    assert main(["train", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)


def results_listing():
    return sorted((str(p), p.stat().st_mtime_ns) for p in RESULTS_DIR.rglob("*"))


def test_markov_metrics_are_those_of_a_direct_run(folder, tiny_frames, capsys):
    before = results_listing()
    report = run_json(capsys, "--data", str(folder), "--model", "markov")
    staypoints = tiny_frames[0]
    direct = train(TrainConfig(model="markov"), build_dataset(staypoints, staypoints["id"]),
                   progress=False)
    assert report["settings"] == "registry: markov"
    assert report["n_params"] == 0 and report["samples"]["test"] == report["test"]["n"] > 0
    for split, metrics in (("validation", direct.val), ("test", direct.test)):
        for key in ("acc1", "acc5", "mrr"):
            assert report[split][key] == pytest.approx(metrics[key])
    assert results_listing() == before  # nothing recorded


@pytest.mark.slow
def test_pointer_uses_the_headline_configuration(folder, capsys):
    report = run_json(capsys, "--data", str(folder), "--model", "pointer", "--epochs", "1",
                      "--device", "cpu")
    assert report["settings"] == "registry: pointer"
    assert report["epochs_run"] == 1 and report["device"] == "cpu"
    # The searched capacity of the pointer experiment (dim 64), not the model's default size.
    expected = build_model("pointer", report["num_classes"], report["num_users"], dim=64,
                           dropout=0.3, features=["user", "time", "duration", "recency",
                                                  "frequency"])
    assert report["n_params"] == count_parameters(expected)
    assert 0 <= report["test"]["acc1"] <= report["test"]["acc5"] <= 1


def test_a_yaml_file_sets_the_training(folder, tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("model: baseline\nepochs: 2\nlr: 0.002\nmodel.dim: 32\n")
    report = run_json(capsys, "--data", str(folder), "--config", str(path))
    assert report["settings"] == str(path) and report["model"] == "baseline"
    assert report["epochs_run"] <= 2
    small = build_model("baseline", report["num_classes"], report["num_users"], dim=32)
    assert report["n_params"] == count_parameters(small)


def test_checkins_without_durations_train_and_say_so(tmp_path, tiny_frames, capsys):
    path = tmp_path / "checkins"
    path.mkdir()
    tiny_frames[0].drop(columns=["duration", "end_day", "end_min"]).to_csv(
        path / "staypoints.csv", index=False)
    report = run_json(capsys, "--data", str(path), "--model", "markov")
    assert report["test"]["n"] > 0
    assert "every duration is 0" in report["notes"][0]


def test_plain_text_report(folder, capsys):
    assert main(["train", "--data", str(folder), "--model", "persistent"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"persistent on {folder} (settings: registry")
    assert out.splitlines()[-1].startswith("test ")


@pytest.mark.parametrize("argv, message", [
    ([], "name a model"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "markov", "--previous-day", "0"], "--previous-day: must be at least 1"),
])
def test_bad_requests_are_one_clear_error(folder, capsys, argv, message):
    assert main(["train", "--data", str(folder), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize("text, message", [
    ("model: markov\nlearning_rate: 0.1\n", "unknown setting 'learning_rate'"),
    ("- model\n", "must be a mapping"),
    ("model: [unclosed\n", "cannot read the training settings"),
    ("model: baseline\n", "--model markov disagrees with model: baseline"),
    ("search: pointer_capacity\n", "['search'] only work inside the registry"),
])
def test_bad_config_files_are_one_clear_error(folder, tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", "--data", str(folder), "--config", str(path), "--model", "markov"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_refused(folder, capsys):
    assert main(["train", "--data", str(folder), "--model", "markov", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_nextloc_data_still_picks_the_dataset(folder, monkeypatch, capsys):
    monkeypatch.setenv("NEXTLOC_DATA", str(folder))
    report = run_json(capsys, "--model", "markov")
    expected = pd.read_csv(folder / "staypoints.csv")
    assert report["num_users"] == expected["user_id"].max()


@pytest.mark.slow
def test_many_places_keep_the_pointer_under_the_budget_but_not_the_baseline(tmp_path, capsys):
    from nextloc.data.synthetic import synthetic_staypoints

    path = tmp_path / "wide"
    path.mkdir()
    # About 6,500 classes: with a row per place the pointer (dim 64) passes 500,000 parameters
    # near 5,900 places, so it shares rows; the baseline has no such option and is refused.
    synthetic_staypoints(70, 60, 30000, elsewhere=1.0).to_csv(path / "staypoints.csv",
                                                              index=False)
    assert main(["train", "--data", str(path), "--model", "baseline", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "over the budget of 500,000" in err and "over_budget_ok: true" in err
    config = tmp_path / "pointer.yaml"
    config.write_text("model: pointer\nmodel.dim: 64\nepochs: 1\nmax_batches: 2\n")
    report = run_json(capsys, "--data", str(path), "--config", str(config))
    assert report["num_classes"] > 5900 and report["n_params"] < 500_000
