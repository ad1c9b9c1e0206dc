"""What a run page says about each kind of run, from its saved files."""
from __future__ import annotations

import matplotlib
import pandas as pd

from nextloc.runpage import cost_line, describe, metrics_table, plot_history, settings

matplotlib.use("Agg")

METRICS = {"acc1": 0.5, "acc5": 0.8, "acc10": 0.85, "mrr": 0.6, "ndcg10": 0.65, "f1": 0.45,
           "n": 3502}
SAVED = {"n_params": 1234, "best_epoch": 7, "train_seconds": 61.0, "device": "cpu",
         "val": {**METRICS, "n": 3334}, "test": METRICS}
TRAINED = {"model": "pointer", "epochs": 30, "patience": 5, "refit": False, "model_options": {}}
HISTORY = pd.DataFrame({"epoch": [1, 2], "train_loss": [3.0, 2.5], "val_acc1": [0.4, 0.5],
                        "val_acc5": [0.7, 0.8]})
NO_HISTORY = pd.DataFrame(columns=["epoch", "train_loss"])


def test_early_stopped_run():
    assert "Early stopping on validation Acc@1 (patience 5) kept epoch 7" in describe(
        SAVED, TRAINED, HISTORY)
    assert list(metrics_table(SAVED, TRAINED).columns) == ["validation", "test"]
    figure = plot_history(SAVED, TRAINED, HISTORY)
    assert len(figure.axes) == 2


def test_refit_has_no_validation_column_and_no_validation_curve():
    config = {**TRAINED, "refit": True, "epochs": 18}
    text = describe(SAVED, config, HISTORY, epochs_from="pointer")
    assert "exactly 18 epochs (the median epoch early stopping chose in `pointer`)" in text
    assert "no validation score" in text
    table = metrics_table(SAVED, config)
    assert list(table.columns) == ["test"]
    assert table.loc["Acc@1 %", "test"] == "50.00"
    assert table.loc["samples", "test"] == "3,502"
    assert len(plot_history(SAVED, config, HISTORY).axes) == 1


def test_rule_and_combined_runs_have_no_epochs():
    rule = {**TRAINED, "model": "markov"}
    assert describe(SAVED, rule, NO_HISTORY).startswith("**A counting rule, no training.**")
    assert plot_history(SAVED, rule, NO_HISTORY) is None
    assert set(settings(SAVED, rule, NO_HISTORY)) == {"model", "model_options"}
    assert cost_line(SAVED, rule, NO_HISTORY) == "1,234 parameters, no training"
    combined = {**TRAINED, "model": "mc_dropout",
                "model_options": {"members": ["runs/full/checkpoints/baseline/seed_42.safetensors"],
                                  "samples": 10}}
    text = describe(SAVED, combined, NO_HISTORY)
    assert "`baseline/seed_42`" in text and "10 passes averaged" in text
    assert "best epoch" not in text.lower()


def test_a_rerendered_page_keeps_the_timing_of_the_run_that_trained(tmp_path):
    import json

    from nextloc.runpage import training_metadata

    page = tmp_path / "seed_1.ipynb"
    assert training_metadata(page) is None
    trained = {"start_time": "a", "end_time": "b", "duration": 130.5}
    page.write_text(json.dumps({"metadata": {"papermill": {**trained, "parameters": {"seed": 1}}}}))
    assert training_metadata(page) == trained
    page.write_text(json.dumps({"metadata": {"papermill": {"duration": 3.0, "parameters": {
        "train": False}}, "nextloc": {"training_run": trained}}}))
    assert training_metadata(page) == trained      # still the training run's, not the render's
    page.write_text(json.dumps({"metadata": {"papermill": {"duration": 3.0, "parameters": {
        "train": False}}}}))
    assert training_metadata(page) is None
