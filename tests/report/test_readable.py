"""Numbers and cells written for a reader (nextloc.report.readable, nextloc.report.data_facts,
nextloc.report.preprocess_page), checked against direct per-sample Python and hand-made inputs."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from nextloc.report import data_facts
from nextloc.report.analysis import readable_accuracy
from nextloc.data.split import UNSEEN, make_samples, split_and_encode
from nextloc.report.readable import count, percent, readable


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
