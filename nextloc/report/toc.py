"""The book's table of contents: ``_toc.yml`` written from ``book/toc.yml`` (parts and chapters)
and the registry's ``book:`` sections (the analyses and runs each chapter holds, listed in the
registry file of that chapter), keeping only run folders that hold executed notebooks, and
placing runs that no chapter lists under "Other runs".

Every glob of run folders (``baseline_d*_l*`` in the registry: ``book/runs/baseline_d*_l*/*``) is
expanded into
one entry per experiment: a short page of its own, ``book/runs/NAME/index.md`` (written here: the
experiment's description and a line per seed), with the experiment's run pages under it, seeds in
numeric order (7, 42, 123, 2024, 31337; a glob would sort them as text)."""
from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import yaml

from nextloc.core import paths
from nextloc.core.paths import atomic_write

SEED_PAGE = re.compile(r"seed_(\d+)$")


def toc_entries(items: list[dict]):
    for item in items:
        yield item
        yield from toc_entries(item.get("sections", []))


def unplaced_experiments(toc: dict, experiments: dict) -> list[str]:
    """Experiments with executed notebooks that no glob of the table of contents matches."""
    globs = [entry["glob"] for part in toc["parts"] for entry in toc_entries(part["chapters"])
             if "glob" in entry]
    return [name for name in experiments
            if list((paths.PROJECT_ROOT / "book" / "runs" / name).glob("*.ipynb"))
            and not any(fnmatch(f"book/runs/{name}/seed_1", glob) for glob in globs)]


def seed_pages(folder: Path) -> list[Path]:
    """The executed run pages of one experiment folder, seeds in numeric order."""
    pages = [p for p in folder.glob("seed_*.ipynb") if SEED_PAGE.match(p.stem)]
    return sorted(pages, key=lambda p: int(SEED_PAGE.match(p.stem).group(1)))


def run_folders(glob: str) -> list[Path]:
    """The experiment folders with executed run pages that a glob like ``book/runs/x_*/*``
    matches, by name."""
    return sorted({page.parent for page in paths.PROJECT_ROOT.glob(glob + ".ipynb")
                   if SEED_PAGE.match(page.stem)})


def percent(value) -> str:
    return "–" if pd.isna(value) else f"{100 * value:.2f}"


def is_refit(name: str) -> bool:
    """Whether an experiment's runs were refit on train + validation (from a saved config)."""
    configs = sorted((paths.PROJECT_ROOT / "results" / "runs" / name).glob("seed_*/config.json"))
    return bool(configs) and bool(json.loads(configs[0].read_text()).get("refit"))


def experiment_page(folder: Path, spec: dict, metrics: pd.DataFrame) -> str:
    """The markdown of an experiment's page: its description and a row per seed."""
    name = folder.name
    rows = metrics[metrics["experiment"] == name].set_index("seed") if len(metrics) else None
    columns = {"val_acc1": "validation Acc@1", "test_acc1": "test Acc@1",
               "test_acc5": "test Acc@5", "test_mrr": "test MRR"}
    note = "."
    if is_refit(name):  # its validation split is training data: no validation score
        del columns["val_acc1"]
        note = "; a refit has no validation score, validation being part of its training data."
    description = spec.get("description", "").strip()
    description = description[:1].upper() + description[1:].rstrip(".") + "." if description else ""
    lines = [f"# `{name}`", "", description, "",
             "One page per seed: the run's settings, metrics and, where it trained, learning "
             f"curves. Accuracies and MRR in %{note}", "",
             "| seed | " + " | ".join(columns.values()) + " |",
             "|---:" * (len(columns) + 1) + "|"]
    for page in seed_pages(folder):
        seed = int(SEED_PAGE.match(page.stem).group(1))
        row = rows.loc[seed] if rows is not None and seed in rows.index else None
        cells = [percent(None if row is None else row[key]) for key in columns]
        lines.append(f"| {{doc}}`{seed} <{page.stem}>` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def experiment_entries(glob: str, placed: set[str], experiments: dict,
                       metrics: pd.DataFrame) -> list[dict]:
    """One toc entry per experiment a glob matches (not yet placed): its page, its seeds under
    it. Writes the experiment's page."""
    entries = []
    for folder in run_folders(glob):
        if folder.name in placed:
            continue
        placed.add(folder.name)
        page = folder / "index.md"
        text = experiment_page(folder, experiments.get(folder.name, {}), metrics)
        if not page.is_file() or page.read_text() != text:
            atomic_write(page, lambda tmp: tmp.write_text(text))
        base = folder.relative_to(paths.PROJECT_ROOT).as_posix()
        entries.append({"file": f"{base}/index", "sections": [
            {"file": f"{base}/{p.stem}"} for p in seed_pages(folder)]})
    return entries


def book_toc(registry: dict) -> dict:
    """``book/toc.yml`` with the sections the registry's ``book:`` gives each chapter: an
    analysis's page, or a glob of run folders."""
    toc = yaml.safe_load((paths.PROJECT_ROOT / "book" / "toc.yml").read_text())
    sections, analyses = registry.get("book") or {}, registry.get("analyses") or {}
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            listed = [{"file": f"book/runs/{name}"} if name in analyses
                      else {"glob": f"book/runs/{name}/*"}
                      for name in sections.get(chapter["file"], [])]
            if listed:
                chapter["sections"] = chapter.get("sections", []) + listed
    return toc


def write_toc(registry: dict) -> Path:
    """``_toc.yml`` from :func:`book_toc`, each glob of run folders expanded into its
    experiments (see the module's docstring); runs of experiments that no chapter places go to
    an "Other runs" part."""
    experiments = registry["experiments"]
    metrics_csv = paths.PROJECT_ROOT / "results" / "metrics.csv"
    metrics = pd.read_csv(metrics_csv) if metrics_csv.is_file() else pd.DataFrame()
    placed: set[str] = set()

    def keep(entries: list[dict]) -> list[dict]:
        kept = []
        for entry in entries:
            if "glob" in entry:
                kept += experiment_entries(entry["glob"], placed, experiments, metrics)
                continue
            if "sections" in entry:
                entry = {**entry, "sections": keep(entry["sections"])}
                if not entry["sections"]:
                    del entry["sections"]
            kept.append(entry)
        return kept

    toc = book_toc(registry)
    unplaced = unplaced_experiments(toc, experiments)
    if unplaced:
        toc["parts"].append({"caption": "Other runs", "chapters": [{
            "file": "book/other_runs",
            "sections": [{"glob": f"book/runs/{name}/*"} for name in unplaced]}]})
    for part in toc["parts"]:
        part["chapters"] = keep(part["chapters"])
    path = paths.PROJECT_ROOT / "_toc.yml"
    header = ("# Written by `nextloc tables` from book/toc.yml and the registry's book: sections;"
              " edit those instead.\n")
    text = header + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
