"""Bad inputs, round two's leftovers (issue 23): commands that write committed files refuse
non-finite numbers before writing anything, and GPS fixes whose time cannot be read. Each case
ends in one ``nextloc: error: ...`` line with exit code 2, or in a correct, counted result."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from conftest import make_staypoints
from project_tools import GOOD_ROW, full_project, rebase_paths, snapshot
from test_bad_inputs import check_clean_failure

from nextloc.cli import main


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A full project (see project_tools) with every nextloc path pointing at it."""
    root = full_project(tmp_path / "project")
    rebase_paths(root, monkeypatch.setattr)
    return root


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    return code, *capsys.readouterr()


# --- committed files: validated first, never a non-finite number ------------------------------

def test_benchmark_training_never_writes_a_non_finite_number(committed, monkeypatch, capsys):
    import nextloc.benchmarks as benchmarks

    path = committed / "results" / "benchmarks" / "training_scaling.json"
    path.parent.mkdir()
    path.write_text('{"committed": 1}\n')
    before = snapshot(committed)
    monkeypatch.setattr(benchmarks, "synthetic_staypoints", lambda *a, **k: make_staypoints()[0])
    # one epoch over an empty training split: milliseconds per sample of 0 / 0
    monkeypatch.setattr(benchmarks, "_time_models",
                        lambda data: {"pointer_ms_per_training_sample": math.nan})
    code, out, err = cli(capsys, "benchmark", "training")
    check_clean_failure(code, out, err, f"non-finite number .*{path} is unchanged")
    assert snapshot(committed) == before


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_archive_refuses_a_non_finite_metric_before_moving_anything(committed, capsys, value):
    row = pd.DataFrame([GOOD_ROW]).astype(str).assign(test_acc1=value)
    row.to_csv(committed / "results" / "metrics.csv", index=False)
    before = snapshot(committed)
    code, out, err = cli(capsys, "archive", "x", "--as", "new")
    check_clean_failure(code, out, err, "metrics.csv line 2: test_acc1 must be a fraction")
    assert snapshot(committed) == before
