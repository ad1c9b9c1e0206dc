"""Numbers and cells written for a reader (nextloc.readable, nextloc.data_facts,
nextloc.preprocess_page), checked against direct per-sample Python and hand-made inputs."""
from __future__ import annotations

from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd

from nextloc import data_facts
from nextloc.analysis import readable_accuracy
from nextloc.data import UNSEEN, make_samples, split_and_encode
from nextloc.readable import count, hide_papermill_cells, percent, readable


def test_percent_and_count():
    assert percent(0.177292) == "17.73 %"
    assert percent(1) == "100.00 %"
    assert percent(0.5, digits=1) == "50.0 %"
    assert count(7424.0) == "7,424"
    assert count(1187) == "1,187"
    assert count(12) == "12"


def test_readable_formats_named_rows_or_columns_only():
    table = pd.DataFrame({"a": [7424.0, 0.1773], "b": [3334.0, 0.25]}, index=["samples", "share"])
    rows = readable(table, counts=["samples"], percents=["share"])
    assert rows.loc["samples"].tolist() == ["7,424", "3,334"]
    assert rows.loc["share"].tolist() == ["17.73 %", "25.00 %"]
    columns = readable(table.T, percents=["share"], axis="columns")
    assert columns["share"].tolist() == ["17.73 %", "25.00 %"]
    assert columns["samples"].tolist() == [7424.0, 3334.0]  # not named: left as it was


def test_hide_papermill_cells_tags_both_parameter_cells_once(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("quick = True"),
                      nbformat.v4.new_code_cell("quick = False"),
                      nbformat.v4.new_code_cell("1 + 1")]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.cells[1].metadata["tags"] = ["injected-parameters"]
    path = tmp_path / "page.ipynb"
    nbformat.write(notebook, path)

    assert hide_papermill_cells(path) is True
    assert hide_papermill_cells(path) is False  # already tagged: the file is left alone
    tags = [cell.metadata.get("tags", []) for cell in nbformat.read(path, as_version=4).cells]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]


def test_history_facts_against_direct_python(tiny_data):
    split = tiny_data.splits["test"]
    facts = data_facts.history_facts(split)
    history = [split.location[split.offsets[i]:split.offsets[i + 1]].tolist() for i in range(len(split))]
    targets = split.target.tolist()
    assert facts["samples"] == len(split)
    assert facts["target is the unseen class"] == np.mean([t == UNSEEN for t in targets])
    assert facts["target in the 7-day history"] == np.mean([t in h for t, h in zip(targets, history)])
    assert facts["unseen target, unseen class in the history"] == np.mean(
        [t == UNSEEN and t in h for t, h in zip(targets, history)])
    assert facts["target = last location"] == np.mean([t == h[-1] for t, h in zip(targets, history)])


def test_long_term_facts_against_direct_python(tiny_data):
    split = tiny_data.splits["validation"]
    facts = data_facts.long_term_facts(split)
    candidates = [split.long_term[i, :, 0].tolist() for i in range(len(split))]
    history = [split.location[split.offsets[i]:split.offsets[i + 1]].tolist() for i in range(len(split))]
    targets = split.target.tolist()
    assert facts["target among the candidates"] == np.mean([t in c for t, c in zip(targets, candidates)])
    assert facts["... and not in the 7-day history"] == np.mean(
        [t in c and t not in h for t, c, h in zip(targets, candidates, history)])
    assert facts["target is the first candidate"] == np.mean([t == c[0] for t, c in zip(targets, candidates)])


def test_facts_table_writes_counts_and_percentages(tiny_data):
    table = data_facts.facts_table(tiny_data.splits, data_facts.history_facts)
    assert list(table.columns) == list(tiny_data.splits)
    assert table.loc["samples", "train"] == f"{len(tiny_data.splits['train']):,}"
    assert all(value.endswith(" %") for value in table.drop(index="samples").to_numpy().ravel())


def test_summary_and_length_tables():
    summary = data_facts.summary_table({"train": 7424, "validation": 3334, "test": 3502,
                                        "num_classes": 1187, "num_users": 45, "notes": ["x"]})
    assert summary["count"].tolist() == ["7,424", "3,334", "3,502", "1,187", "45"]
    assert "notes" not in " ".join(summary.index)
    split = SimpleNamespace(lengths=np.array([3, 4, 5, 10]))
    lengths = data_facts.length_table({"train": split})
    assert lengths.loc["mean", "train"] == "5.5"
    assert lengths.loc["min", "train"] == "3" and lengths.loc["max", "train"] == "10"


def test_target_counts_and_imbalance_sentence():
    split = SimpleNamespace(target=np.array([2, 2, 2, 3, 1, 4]))
    counts = data_facts.target_counts(split, num_locations=6)
    assert counts.tolist() == [3, 1, 1, 0]  # classes 2..5, padding and unseen left out
    sentence = data_facts.imbalance_sentence(counts, rare=2)
    assert "60.00 %" in sentence and "3 of the 4 locations" in sentence


def test_generation_seconds_runs_the_maker_on_every_split(tiny_frames):
    staypoints, valid_ids = tiny_frames
    frame = split_and_encode(staypoints)
    calls = []

    def make(rows, ids, previous_day):
        calls.append(len(rows))
        return make_samples(rows, ids, previous_day)

    assert data_facts.generation_seconds(frame, valid_ids, make, repeats=2) > 0
    assert len(calls) == 6 and sum(calls[:3]) == len(frame)


def test_readable_accuracy_one_row_per_experiment_one_column_per_kind_of_target():
    samples = pd.DataFrame({
        "experiment": ["full"] * 4 + ["full_no_x"] * 4, "seed": 7,
        "run": ["full/seed_7"] * 4 + ["full_no_x/seed_7"] * 4,
        "unseen": [False, False, False, True] * 2, "in_history": [True, True, False, True] * 2,
        "correct": [True, False, False, True, True, True, False, False]})
    out = readable_accuracy(samples, "full")
    assert out.index.tolist() == ["all parts", "no_x"]
    assert out.columns.tolist() == ["known place (75.00 %)", "unseen class (25.00 %)",
                                    "in the 7-day history (75.00 %)", "not in the history (25.00 %)"]
    assert out.loc["all parts"].tolist() == ["33.33 %", "100.00 %", "66.67 %", "0.00 %"]
    assert out.loc["no_x"].tolist() == ["66.67 %", "0.00 %", "66.67 %", "0.00 %"]


def test_an_executed_analysis_page_hides_both_parameter_cells(project, monkeypatch):
    import yaml

    import nextloc.runner
    from nextloc import paths

    def papermill_like(template, output, title, parameters, jobs=None):
        """What papermill writes: the template's parameters cell, then its injected one."""
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_markdown_cell(title),
                          nbformat.v4.new_code_cell("quick = True"),
                          nbformat.v4.new_code_cell(f"quick = {parameters['quick']}"),
                          nbformat.v4.new_code_cell("print(quick)")]
        notebook.cells[1].metadata["tags"] = ["parameters"]
        notebook.cells[2].metadata["tags"] = ["injected-parameters"]
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, output)

    monkeypatch.setattr(nextloc.runner, "execute", papermill_like)
    (project / "experiments.yaml").write_text(yaml.safe_dump(
        {"experiments": {}, "analyses": {"facts": {"title": "Facts"}}}))

    nextloc.runner.run_all(["facts"], quick=False)

    cells = nbformat.read(paths.notebook_path("facts", None, False), as_version=4).cells
    assert [cell.metadata.get("tags", []) for cell in cells] == [
        [], ["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]
