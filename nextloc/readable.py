"""Numbers and cells of the analysis pages written for a reader: percentages with two decimals,
counts with thousands separators, and papermill's parameter cells hidden from the book.

The analysis notebooks (``notebooks/data.ipynb`` and the like) format their tables with
:func:`percent`, :func:`count` and :func:`readable`; ``nextloc run`` tags the executed copy's
parameter cells ``remove-cell`` with :func:`hide_papermill_cells` (Jupyter Book honours the tag).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd

PAPERMILL_TAGS = {"parameters", "injected-parameters"}


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


def hide_papermill_cells(path: Path) -> bool:
    """Tag the ``parameters`` and ``injected-parameters`` cells of an executed notebook
    ``remove-cell``, in place; True when the file changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if PAPERMILL_TAGS & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
            changed = True
    if changed:
        nbformat.write(notebook, path)
    return changed
