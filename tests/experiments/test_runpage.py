"""What a run page says about each kind of run, from its saved files."""
from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from nextloc.experiments.runpage import cost_line, describe, metrics_table, plot_history, settings

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

    from nextloc.experiments.runpage import training_metadata

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


# --- what the book hides of a run page (nextloc.experiments.tidy)
# ------------------------------------------

def executed_page():
    import nbformat

    page = nbformat.v4.new_notebook()
    page.cells = [
        nbformat.v4.new_markdown_cell("# `x`, seed 7\n\nthe x model"),
        nbformat.v4.new_code_cell('experiment = "x"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('experiment = "x"\nseed = 7',
                                  metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(settings)", outputs=[nbformat.v4.new_output(
            "stream", name="stdout",
            text=' "members": ["runs/full/checkpoints/pointer_pair/seed_7.safetensors"]\n')])]
    return page


def test_tidy_removes_papermill_cells_and_hides_code_and_checkpoint_paths(tmp_path, monkeypatch):
    import json

    import nextloc.experiments.tidy
    from nextloc.experiments.tidy import tidy_notebook

    folder = tmp_path / "x" / "seed_7"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(SAVED))
    (folder / "config.json").write_text(json.dumps(TRAINED))
    HISTORY.to_csv(folder / "history.csv", index=False)
    monkeypatch.setattr(nextloc.experiments.tidy.paths, "run_dir", lambda name, seed, quick: folder)

    page = tidy_notebook(executed_page(), ("x", 7, False))
    tags = [cell.metadata.get("tags", []) for cell in page.cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]
    assert tags[3] == ["remove-input"]
    assert page.cells[3].outputs[0].text == ' "members": ["pointer_pair/seed_7"]\n'
    assert page.cells[0].source.startswith("# `x`, seed 7\n\n**Kind of run:** one seed (7) of "
                                           "the experiment `x`, trained on the training split")
    again = tidy_notebook(page, ("x", 7, False))                 # idempotent
    assert again.cells[0].source.count("Kind of run") == 1
    assert again.cells[1].metadata["tags"].count("remove-cell") == 1


def test_a_run_page_title_takes_the_registry_description_of_today():
    from nextloc.experiments.tidy import with_kind_line

    old = "# `x`, seed 7\n\n**Kind of run:** old\n\nthe x model (issue 11)"
    assert with_kind_line(old, "**Kind of run:** new", "the x model") == (
        "# `x`, seed 7\n\n**Kind of run:** new\n\nthe x model")
    assert with_kind_line(old, "**Kind of run:** new").endswith("(issue 11)")  # not in registry


def test_an_analysis_notebook_loses_papermill_cells_and_shows_outputs_without_code():
    from nextloc.experiments.tidy import tidy_notebook

    page = tidy_notebook(executed_page())
    assert "remove-cell" in page.cells[1].metadata["tags"]
    assert page.cells[3].metadata["tags"] == ["remove-input"]
    assert "Kind of run" not in page.cells[0].source


@pytest.mark.slow
def test_every_committed_run_page_hides_papermill_cells_and_checkpoint_paths():
    """`python -m nextloc.experiments.tidy` re-tags the committed pages without executing them."""
    import nbformat

    from nextloc.core.paths import BOOK_RUNS

    pages = sorted(BOOK_RUNS.glob("*/seed_*.ipynb"))
    untidy = []
    for path in pages:
        page = nbformat.read(path, as_version=4)
        for cell in page.cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code" and (
                    ({"parameters", "injected-parameters"} & set(tags)
                     and "remove-cell" not in tags)
                    or "checkpoints/" in str(cell.get("outputs", ""))):
                untidy.append(path.relative_to(BOOK_RUNS).as_posix())
    assert untidy == [], "run `python -m nextloc.experiments.tidy`"


def test_tidy_shows_printed_settings_as_a_table():
    import nbformat

    from nextloc.experiments.tidy import tidy_notebook

    page = executed_page()
    page.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
        '{\n "lr": 0.001,\n "model_options": {"teacher": ['
        '"runs/full/checkpoints/a/seed_7.safetensors", '
        '"runs/full/checkpoints/a/seed_42.safetensors"]}\n}\n'))]
    output = tidy_notebook(page, ("x", 7, False)).cells[3].outputs[0]
    assert output.output_type == "display_data"
    assert output.data["text/plain"] == "lr: 0.001\nmodel_options.teacher: a/seed_7, a/seed_42"
    assert "<th>lr</th><td>0.001</td>" in output.data["text/html"]
