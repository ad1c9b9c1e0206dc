"""The book's table of contents: ``_toc.yml`` written from ``book/toc.yml``, keeping only run
folders that hold executed notebooks, and placing runs that no chapter lists under "Other runs"."""
from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import yaml

from nextloc.paths import PROJECT_ROOT
from nextloc.registry import load_registry


def toc_entries(items: list[dict]):
    for item in items:
        yield item
        yield from toc_entries(item.get("sections", []))


def unplaced_experiments(toc: dict) -> list[str]:
    """Experiments with executed notebooks that no glob of the table of contents matches."""
    globs = [entry["glob"] for part in toc["parts"] for entry in toc_entries(part["chapters"])
             if "glob" in entry]
    return [name for name in load_registry()["experiments"]
            if list((PROJECT_ROOT / "book" / "runs" / name).glob("*.ipynb"))
            and not any(fnmatch(f"book/runs/{name}/seed_1", glob) for glob in globs)]


def write_toc() -> Path:
    """``_toc.yml`` from ``book/toc.yml`` without the globs that match no executed notebook; runs
    of experiments that book/toc.yml does not place go to an "Other runs" part."""
    def keep(entries: list[dict]) -> list[dict]:
        kept = []
        for entry in entries:
            if "glob" in entry and not list(PROJECT_ROOT.glob(entry["glob"] + ".ipynb")):
                continue
            if "sections" in entry:
                entry = {**entry, "sections": keep(entry["sections"])}
                if not entry["sections"]:
                    del entry["sections"]
            kept.append(entry)
        return kept

    toc = yaml.safe_load((PROJECT_ROOT / "book" / "toc.yml").read_text())
    unplaced = unplaced_experiments(toc)
    for part in toc["parts"]:
        part["chapters"] = keep(part["chapters"])
    if unplaced:
        toc["parts"].append({"caption": "Other runs", "chapters": [{
            "file": "book/other_runs",
            "sections": [{"glob": f"book/runs/{name}/*"} for name in unplaced]}]})
    path = PROJECT_ROOT / "_toc.yml"
    header = "# Written by `nextloc tables` from book/toc.yml; edit that file instead.\n"
    path.write_text(header + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    return path
