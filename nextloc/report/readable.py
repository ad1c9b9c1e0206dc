"""Numbers of the analysis pages written for a reader: percentages with two decimals and counts
with thousands separators. The analysis notebooks (``notebooks/data.ipynb`` and the like) format
their tables with :func:`percent`, :func:`count` and :func:`readable`; their papermill cells are
hidden by :mod:`nextloc.experiments.tidy`, like every executed notebook's."""
from __future__ import annotations

import pandas as pd


def percent(share: float, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage: ``0.17729 -> '17.73 %'``."""
    return f"{100 * share:.{digits}f} %"


def count(number: float) -> str:
    """A count with thousands separators: ``7424.0 -> '7,424'``."""
    return f"{int(round(number)):,}"


def readable(table: pd.DataFrame, counts: tuple = (), percents: tuple = (),
             axis: str = "index") -> pd.DataFrame:
    """``table`` as text: the rows (``axis="index"``) or columns (``axis="columns"``) named in
    ``counts`` as counts, those in ``percents`` as percentages; the others are left as they are."""
    out = table.astype(object)
    for names, form in ((counts, count), (percents, percent)):
        for name in names:
            if axis == "index":
                out.loc[name] = [form(v) for v in table.loc[name]]
            else:
                out[name] = [form(v) for v in table[name]]
    return out
