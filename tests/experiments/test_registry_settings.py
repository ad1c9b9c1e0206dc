"""The experiment registry: settings -> TrainConfig, per-run placeholders, settings resolved from
earlier results, and the metrics table. Every registry and metrics file here is a temporary one."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from project_tools import registry_file

import nextloc.core.paths
import nextloc.experiments.results
from nextloc.core.paths import PROJECT_ROOT
from nextloc.core.errors import ConfigError
from nextloc.core.paths import RUN_SCRATCH
from nextloc.experiments.registry import (QUICK_SETTINGS, config_hash, experiment_settings,
                                          fill_placeholders, headline_experiments, run_settings,
                                          train_config)
from nextloc.experiments.results import METRICS_COLUMNS, read_metrics, record_metrics

MEMBERS = ["{checkpoints}/x/seed_{seed}.safetensors",
           "{checkpoints}/x/seed_{next_seed}.safetensors"]
REGISTRY = {"experiments": {
    "x": {"model": "baseline", "seeds": [42, 123, 7], "description": "members of the ensemble"},
    "pair_over_budget": {"model": "ensemble", "model.members": MEMBERS, "seeds": [42, 123, 7]},
    "pair": {"model": "ensemble", "model.members": MEMBERS, "seeds": [42, 123, 7]},
    "x_refit": {"model": "baseline", "refit": True, "epochs_from": "x", "seeds": [42]},
}}


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """REGISTRY as the experiment registry, and an (absent) metrics file, both in tmp_path."""
    path = registry_file(tmp_path)
    path.write_text(yaml.safe_dump(REGISTRY))
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", path.parent)
    monkeypatch.setattr(nextloc.core.paths, "METRICS_FILE", tmp_path / "metrics.csv")
    return path


def metrics_row(experiment: str, seed: int, **values) -> dict:
    row = {column: 0.0 for column in METRICS_COLUMNS}
    row.update(experiment=experiment, model="baseline", seed=seed, n_params=1000, best_epoch=1,
               device="cpu", dataset="geolife")
    row.update(values)
    return row


# --- train_config ----------------------------------------------------------------------------

def test_train_config_maps_model_keys_to_options_and_passes_training_keys():
    settings = {"model": "pointer", "model.dim": 32, "model.features": ["user", "time"],
                "lr": 0.01, "epochs": 3, "mask_new_locations_after": None,
                # registry bookkeeping is allowed and ignored
                "seeds": [1, 2], "description": "text", "prior_report_acc1": 0.3}
    config = train_config(settings, seed=7, device="cpu")
    assert config.model == "pointer"
    assert config.model_options == {"dim": 32, "features": ["user", "time"]}
    assert (config.lr, config.epochs, config.mask_new_locations_after) == (0.01, 3, None)
    assert (config.seed, config.device) == (7, "cpu")


def test_train_config_merges_model_options_with_model_keys():
    config = train_config({"model_options": {"dim": 16, "layers": 1}, "model.dim": 32})
    assert config.model_options == {"dim": 32, "layers": 1}


def test_train_config_overrides_win():
    assert train_config({"epochs": 5}, epochs=2).epochs == 2


@pytest.mark.parametrize("settings, overrides", [
    ({"learning_rate": 0.1}, {}),
    ({"lr": 0.1}, {"learning_rate": 0.1}),
])
def test_train_config_rejects_an_unknown_setting_by_name(settings, overrides):
    with pytest.raises(ConfigError, match="unknown setting 'learning_rate'.*model.<option>"):
        train_config(settings, **overrides)


# --- placeholders and run settings -----------------------------------------------------------

def test_fill_placeholders_fills_strings_and_lists_and_leaves_other_values():
    fields = {"checkpoints": "runs/full/checkpoints", "seed": 7, "next_seed": 42}
    assert fill_placeholders(MEMBERS, fields) == [
        "runs/full/checkpoints/x/seed_7.safetensors", "runs/full/checkpoints/x/seed_42.safetensors"]
    assert fill_placeholders("{seed}", fields) == "7"
    assert fill_placeholders(0.5, fields) == 0.5
    assert fill_placeholders(None, fields) is None


@pytest.mark.parametrize("seed, following", [(42, 123), (123, 7), (7, 42)])
def test_run_settings_fill_seed_and_the_cyclic_next_seed(registry, seed, following):
    settings = run_settings("pair", seed, quick=False)
    root = "runs/full/checkpoints"
    assert settings["model.members"] == [f"{root}/x/seed_{seed}.safetensors",
                                         f"{root}/x/seed_{following}.safetensors"]


def test_checkpoints_is_relative_to_the_project_root_and_differs_for_quick_runs(registry):
    full = run_settings("pair", 42, quick=False)["model.members"][0]
    quick = run_settings("pair", 42, quick=True)["model.members"][0]
    assert full != quick
    for path, kind in ((full, "full"), (quick, "quick")):
        assert not Path(path).is_absolute()
        folder = PROJECT_ROOT / Path(path).parent.parent
        assert folder == RUN_SCRATCH / kind / "checkpoints"


def test_quick_runs_get_the_quick_settings(registry):
    settings = run_settings("x", 42, quick=True)
    assert {k: settings[k] for k in QUICK_SETTINGS} == QUICK_SETTINGS
    assert "epochs" not in run_settings("x", 42, quick=False)


def test_registry_only_keys_are_not_settings(registry):
    settings = run_settings("x", 42, quick=False)
    assert settings == {"model": "baseline"}
    train_config(settings, seed=42)  # accepted as is


def test_over_budget_name_sets_over_budget_ok(registry):
    assert run_settings("pair_over_budget", 42, quick=False)["over_budget_ok"] is True
    assert "over_budget_ok" not in run_settings("pair", 42, quick=False)
    assert train_config(run_settings("pair_over_budget", 42, quick=True)).over_budget_ok


def test_unknown_experiment(registry):
    with pytest.raises(ConfigError, match="unknown experiment 'no_such'"):
        run_settings("no_such", 42, quick=True)
    with pytest.raises(ConfigError, match="unknown experiment 'no_such'"):
        experiment_settings("no_such")


def test_missing_registry_file(tmp_path, monkeypatch):
    monkeypatch.setattr(nextloc.core.paths, "REGISTRY_DIR", tmp_path / "absent")
    with pytest.raises(ConfigError, match="registry not found"):
        experiment_settings("x")


# --- epochs_from -----------------------------------------------------------------------------

def test_epochs_from_is_the_median_best_epoch_of_the_referenced_runs(registry):
    # x's registry seeds are 42, 123, 7; its runs of seeds 1 and 2 (from `--seeds 1 2`) and the
    # other experiments' runs do not count (issue 9, defect 8).
    rows = [metrics_row("x", 42, best_epoch=5), metrics_row("x", 123, best_epoch=12),
            metrics_row("x", 7, best_epoch=7), metrics_row("x", 1, best_epoch=30),
            metrics_row("x", 2, best_epoch=30), metrics_row("pair", 1, best_epoch=100),
            metrics_row("pair", 2, best_epoch=100)]
    pd.DataFrame(rows, columns=METRICS_COLUMNS).to_csv(nextloc.core.paths.METRICS_FILE,
                                                       index=False)
    settings = run_settings("x_refit", 42, quick=False)
    assert settings["epochs"] == 7
    assert settings["refit"] is True
    assert train_config(settings).epochs == 7
    # quick runs never look at the results
    assert run_settings("x_refit", 42, quick=True)["epochs"] == QUICK_SETTINGS["epochs"]


@pytest.mark.parametrize("other_rows", [[], [("pair", 1)], [("x", 42), ("x", 1), ("x", 2)]])
def test_epochs_from_without_runs_is_a_clear_error(registry, other_rows):
    # no metrics file, one without runs of 'x', or one without all of x's registry seeds
    if other_rows:
        pd.DataFrame([metrics_row(*row) for row in other_rows], columns=METRICS_COLUMNS).to_csv(
            nextloc.core.paths.METRICS_FILE, index=False)
    with pytest.raises(ConfigError, match=r"epochs_from: no runs of 'x' for seed\(s\) "
                                          r"\[(42, )?123, 7\].*nextloc run x"):
        run_settings("x_refit", 42, quick=False)


# --- the metrics table -----------------------------------------------------------------------

def test_record_metrics_inserts_and_replaces_by_experiment_and_seed(tmp_path):
    path = tmp_path / "results" / "metrics.csv"
    record_metrics(metrics_row("x", 42, test_acc1=0.30), path=path)
    record_metrics(metrics_row("x", 7, test_acc1=0.20), path=path)
    record_metrics(metrics_row("x", 42, test_acc1=0.35, best_epoch=9), path=path)

    table = read_metrics(path)
    assert list(table.columns) == METRICS_COLUMNS
    assert len(table) == 2
    by_seed = table.set_index("seed")
    assert by_seed.loc[42, "test_acc1"] == pytest.approx(0.35)
    assert by_seed.loc[42, "best_epoch"] == 9
    assert by_seed.loc[7, "test_acc1"] == pytest.approx(0.20)
    # no temporary file is left behind
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_record_metrics_keeps_other_experiments_with_the_same_seed(tmp_path):
    path = tmp_path / "metrics.csv"
    record_metrics(metrics_row("x", 42, test_acc1=0.30), path=path)
    record_metrics(metrics_row("pair", 42, test_acc1=0.40), path=path)
    table = read_metrics(path)
    assert sorted(table["experiment"]) == ["pair", "x"]


def test_read_metrics_without_a_file_is_empty_with_the_columns(tmp_path):
    table = read_metrics(tmp_path / "absent.csv")
    assert table.empty and list(table.columns) == METRICS_COLUMNS


# --- config_hash -----------------------------------------------------------------------------

SETTINGS = {"model": "pointer", "lr": 0.001, "model.dim": 64, "mask_new_locations_after": None}


def test_config_hash_is_stable_and_ignores_key_order():
    assert config_hash(SETTINGS, 42) == config_hash(dict(reversed(SETTINGS.items())), 42)


def test_config_hash_changes_with_the_seed():
    assert config_hash(SETTINGS, 42) != config_hash(SETTINGS, 43)


@pytest.mark.parametrize("change", [
    {"model": "baseline"}, {"lr": 0.002}, {"model.dim": 96},
    {"mask_new_locations_after": 0.5}, {"epochs": 3},
])
def test_config_hash_changes_with_any_setting(change):
    assert config_hash({**SETTINGS, **change}, 42) != config_hash(SETTINGS, 42)


def test_archive_moves_runs_and_rows_out_of_the_live_results(tmp_path, monkeypatch):
    results = tmp_path / "results"
    monkeypatch.setattr(nextloc.core.paths, "RESULTS_DIR", results)
    monkeypatch.setattr(nextloc.core.paths, "METRICS_FILE", results / "metrics.csv")
    monkeypatch.setattr(nextloc.core.paths, "SUPERSEDED_DIR", results / "superseded")
    monkeypatch.setattr(nextloc.core.paths, "BOOK_RUNS", tmp_path / "book" / "runs")
    for experiment in ("old", "other"):
        record_metrics(metrics_row(experiment, 1, test_acc1=0.5))
        (results / "runs" / experiment / "seed_1").mkdir(parents=True)
    (tmp_path / "book" / "runs" / "old").mkdir(parents=True)

    target = nextloc.experiments.results.archive_runs("old", "old_v1")

    assert list(read_metrics()["experiment"]) == ["other"]
    assert list(pd.read_csv(target / "metrics.csv")["experiment"]) == ["old"]
    assert (target / "runs" / "seed_1").is_dir() and (target / "notebooks").is_dir()
    assert not (results / "runs" / "old").exists()
    with pytest.raises(ConfigError, match="exists already"):
        nextloc.experiments.results.archive_runs("other", "old_v1")
    with pytest.raises(ConfigError, match="no runs of 'missing'"):
        nextloc.experiments.results.archive_runs("missing", "new_label")


def test_a_refit_records_the_epochs_it_used_and_where_they_came_from(project, monkeypatch,
                                                                     tiny_data_dir):
    registry_file(project).write_text(yaml.safe_dump({"experiments": {
        "src": {"model": "persistent", "seeds": [42, 123, 7]},
        "src_refit": {"model": "persistent", "refit": True, "epochs_from": "src",
                      "seeds": [42]}}}))
    rows = [metrics_row("src", 42, best_epoch=5), metrics_row("src", 123, best_epoch=12),
            metrics_row("src", 7, best_epoch=8), metrics_row("src", 1, best_epoch=40)]
    for row in rows:
        record_metrics(row)
    monkeypatch.setenv("NEXTLOC_DATA", str(tiny_data_dir))
    from nextloc.experiments.run import train_and_record_seed

    train_and_record_seed("src_refit", 42, quick=False, device="cpu")
    config = json.loads((nextloc.core.paths.run_dir("src_refit", 42, False) / "config.json")
                        .read_text())
    assert config["epochs"] == 8
    assert config["epochs_from"] == {"experiment": "src", "seeds": [42, 123, 7],
                                     "best_epochs": [5, 12, 8], "epochs": 8}


def test_yaml_reads_exponent_floats_as_numbers(registry):
    registry.write_text("experiments:\n  x: {model: baseline, lr: 1e-3, weight_decay: 5E-4, "
                        "seeds: [1]}\n")
    settings = experiment_settings("x")
    assert settings["lr"] == 0.001 and settings["weight_decay"] == 0.0005
    assert train_config(settings).lr == 0.001


def test_every_training_setting_has_a_check():
    from dataclasses import fields

    from nextloc.training.settings import RULES
    from nextloc.training.settings import TrainConfig

    assert {f.name for f in fields(TrainConfig)} == set(RULES)


# --- headline --------------------------------------------------------------------------------

def test_the_headline_names_a_train_only_and_a_refit_experiment(registry):
    registry.write_text(yaml.safe_dump({**REGISTRY, "headline": {"train_only": "x",
                                                                 "refit": "x_refit"}}))
    assert headline_experiments() == ["x", "x_refit"]


@pytest.mark.parametrize("headline, message", [
    ({"train_only": "x"}, "'headline' must be"),
    ({"train_only": "x", "refit": "no_such"}, "'headline' must be"),
    ({"train_only": "x", "refit": "x", "other": "x"}, "'headline' must be"),
    ({"train_only": "x", "refit": "pair"}, "'pair' must have 'refit: true'"),
])
def test_a_wrong_headline_is_refused_by_name(registry, headline, message):
    registry.write_text(yaml.safe_dump({**REGISTRY, "headline": headline}))
    with pytest.raises(ConfigError, match=message):
        headline_experiments()


def test_a_registry_without_a_headline_has_none(registry):
    assert headline_experiments() == []


def test_an_ablation_switch_may_list_its_own_seeds():
    from nextloc.experiments.registry import expand_ablations

    experiments = {"base": {"model": "pointer", "seeds": [1, 2, 3, 4, 5], "lr": 0.001}}
    ablations = {"base": {"seeds": [1, 2, 3], "without": [
        "copy", {"user": {"model.features": ["time"], "seeds": [1, 2, 3, 4, 5]}}]}}
    expanded = expand_ablations(experiments, ablations)
    assert expanded["base_no_copy"]["seeds"] == [1, 2, 3]
    assert expanded["base_no_user"]["seeds"] == [1, 2, 3, 4, 5]
    assert expanded["base_no_user"]["lr"] == 0.001
