"""What the book hides of an executed notebook, as cell tags that Jupyter Book honours.

Papermill leaves two cells of plumbing in every notebook it runs: the template's ``parameters``
cell and the ``injected-parameters`` cell it adds after it. Both are tagged ``remove-cell``, so
no page shows them. A run page (``notebooks/train.ipynb`` executed for one seed of an experiment)
also loses the input of its other code cells (``remove-input``: the reader sees what the run
saved, not the calls that read it), says in one line under its title what kind of run it was,
and names a checkpoint by its run (``pointer_pair/seed_7``) instead of its path on the machine
that trained it.

:func:`tidy_notebook` is applied to every notebook ``nextloc run`` executes
(:mod:`nextloc.experiments.notebook_job`); ``python -m nextloc.experiments.tidy`` applies it to the
executed notebooks committed under ``book/runs`` without executing them again.
"""
from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import nbformat

from nextloc.core import paths

PLUMBING = {"parameters", "injected-parameters"}
KIND_MARK = "**Kind of run:**"
CHECKPOINT = re.compile(r"""(?:[^\s"'`]*/)?checkpoints/([\w.-]+)/(seed_\d+)\.safetensors""")
RUN_PAGE = re.compile(r"seed_(\d+)\.ipynb$")
KINDS = {
    "early-stopped": "trained on the training split, the epoch kept chosen by early stopping "
                     "on validation (protocol A)",
    "refit": "refit on train + validation for a fixed number of epochs, evaluated once on test "
             "(protocol B)",
    "combined": "saved runs combined at test time; no training",
    "rule": "a counting rule read from the training split; no training",
    "refit rule": "a counting rule read from the training and validation splits; no training "
                  "(protocol B)",
}


def hide_checkpoints(text: str) -> str:
    """``runs/full/checkpoints/NAME/seed_N.safetensors`` -> ``NAME/seed_N``."""
    return CHECKPOINT.sub(r"\1/\2", text)


def add_tag(cell, tag: str) -> None:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def kind_line(experiment: str, seed: int, quick: bool = False) -> str | None:
    """One line saying what kind of run a run page records, from the files the run saved; None
    when they are missing."""
    from nextloc.experiments.runpage import load_run, run_kind

    folder = paths.run_dir(experiment, seed, quick)
    if not (folder / "metrics.json").is_file():
        return None
    kind = run_kind(*load_run(folder))
    return f"{KIND_MARK} one seed ({seed}) of the experiment `{experiment}`, {KINDS[kind]}."


def with_kind_line(title: str, line: str, description: str | None = None) -> str:
    """The title cell's text with ``line`` as its second paragraph (replacing an older one) and,
    when given, the experiment's ``description`` as the registry says it today (so that a page
    written before a description was reworded does not keep the old wording)."""
    heading, _, rest = title.partition("\n")
    paragraphs = [p for p in rest.strip().split("\n\n") if p and not p.startswith(KIND_MARK)]
    return "\n\n".join([heading, line, *([description] if description else paragraphs)])


def registry_description(experiment: str) -> str | None:
    from nextloc.experiments.registry import load_registry

    return load_registry()["experiments"].get(experiment, {}).get("description")


def flat_settings(settings: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(setting, value) pairs, nested options as ``model_options.key``, lists comma-joined."""
    pairs = []
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            pairs += flat_settings(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            pairs.append((prefix + key, ", ".join(str(item) for item in value)))
        else:
            pairs.append((prefix + key, value if isinstance(value, str) else json.dumps(value)))
    return pairs


def settings_output(output):
    """A printed JSON object of settings as a two-column table (setting, value) without a
    header row; None when the output is not one."""
    try:
        settings = json.loads(output.get("text", ""))
    except ValueError:
        return None
    if output.get("output_type") != "stream" or not isinstance(settings, dict):
        return None
    pairs = flat_settings(settings)
    rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
                   for key, value in pairs)
    plain = "\n".join(f"{key}: {value}" for key, value in pairs)
    return nbformat.v4.new_output("display_data", data={
        "text/html": f'<table class="run-settings"><tbody>{rows}</tbody></table>',
        "text/plain": plain})


def tidy_output(output) -> None:
    if "text" in output:
        output["text"] = hide_checkpoints(output["text"])
    for key, value in output.get("data", {}).items():
        if key.startswith("text/") and isinstance(value, str):
            output["data"][key] = hide_checkpoints(value)


def tidy_notebook(notebook, run: tuple[str, int, bool] | None = None):
    """Tag papermill's cells ``remove-cell`` and hide the other code inputs; for a run page
    (``run`` = experiment, seed, quick) also hide checkpoint paths and put the kind of run under
    the title."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if PLUMBING & set(cell.get("metadata", {}).get("tags", [])):
            add_tag(cell, "remove-cell")
        elif run is None:
            add_tag(cell, "remove-input")  # an analysis page: the reader reads its outputs
        elif run:
            add_tag(cell, "remove-input")
            for output in cell.get("outputs", []):
                tidy_output(output)
            cell.outputs = [settings_output(out) or out for out in cell.get("outputs", [])]
    if run and notebook.cells and notebook.cells[0].cell_type == "markdown":
        line = kind_line(*run)
        if line:
            notebook.cells[0].source = with_kind_line(notebook.cells[0].source, line,
                                                      registry_description(run[0]))
    return notebook


def tidy_file(path: Path, run: tuple[str, int, bool] | None = None) -> bool:
    """Tidy one executed notebook in place; True when it changed."""
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    tidy_notebook(notebook, run)
    if nbformat.writes(notebook) == before:
        return False
    nbformat.write(notebook, path)
    return True


def tidy_book(book_runs: Path = paths.BOOK_RUNS) -> list[Path]:
    """Tidy every executed notebook under ``book/runs`` (the analysis pages and the run pages
    ``NAME/seed_N.ipynb``) without executing it; the pages that changed."""
    changed = [path for path in sorted(book_runs.glob("*.ipynb")) if tidy_file(path)]
    for path in sorted(book_runs.glob("*/seed_*.ipynb")):
        run = (path.parent.name, int(RUN_PAGE.search(path.name).group(1)), False)
        if tidy_file(path, run):
            changed.append(path)
    return changed


if __name__ == "__main__":
    for changed in tidy_book(Path(sys.argv[1]) if len(sys.argv) > 1 else paths.BOOK_RUNS):
        print(changed)
