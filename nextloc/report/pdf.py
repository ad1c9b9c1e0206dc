"""The report as a PDF a person prints, and the run pages as a supplement: ``make pdf``
(``python -m nextloc.report.pdf``; ``--no-runs`` for the report alone).

``_build/pdf/nextloc.pdf`` holds the chapters and analyses: a title page, the contents with page
numbers, numbered chapters and sections (figures keep the book's numbers), PDF bookmarks for
every part, chapter and section, links only inside the file or to public URLs, at most 120
pages. ``_build/pdf/nextloc-runs.pdf`` holds the run pages: a page per experiment (its seeds'
metrics), each seed's record after it, grouped under the chapters that discuss them, with a
bookmark per experiment and one per seed under it.

Why the runs are a separate PDF: they are several hundred pages of records (each seed's
settings, metrics and learning curves) that back the report's tables but are not read in order,
and in the report they made 91 % of its pages; yet they are the evidence, so they travel as a
file of their own rather than staying HTML-only (an HTML book does not survive being mailed).

How: :mod:`nextloc.report.printdoc` joins the built HTML pages into one print document per PDF (the
articles only, ids unique, links made internal or plain text), styled for A4 by
``_static/print.css``. Headless Chromium prints each document in one go (page numbers run
through, figures stay vector images). The first print gives the page of every heading
(Chromium writes a named destination for every link target); the contents get those numbers,
the document is printed again, and pypdf adds the bookmarks. All offline; the browser is a
system package, and without it this stops saying how to get it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader, PdfWriter

from nextloc.core.errors import NextlocError
from nextloc.core import paths
from nextloc.report.printdoc import (HTML, PRINT_DIR, ROOT_PAGE, Document, Entry, is_run_page,
                              page_order, print_document)

__all__ = ["find_browser", "page_order", "print_document", "write_pdf", "count_pages",
           "blank_pages"]

PDF_DIR = paths.BUILD / "pdf"
PDF = PDF_DIR / "nextloc.pdf"
RUNS_PDF = PDF_DIR / "nextloc-runs.pdf"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str:
    """The Chromium executable: ``$CHROMIUM``, else the first of BROWSERS on the PATH."""
    for candidate in [os.environ.get("CHROMIUM"), *BROWSERS]:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise NextlocError("no Chromium browser found for printing the PDF. Install it (Debian or "
                       "Ubuntu: `sudo apt-get install chromium`) or set CHROMIUM to the path "
                       "of Chromium or Google Chrome.")


def print_pdf(browser: str, document: Path, out: Path) -> Path:
    """Headless Chromium prints ``document`` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={out}", document.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not out.is_file():
        raise NextlocError(f"{browser} could not print {document}: {done.stderr[-2000:]}")
    return out


def destination_pages(pdf: Path) -> dict[str, int]:
    """Named destination -> page number (1 for the first page) of a PDF Chromium printed."""
    reader = PdfReader(pdf)
    return {str(name).lstrip("/"): reader.get_destination_page_number(destination) + 1
            for name, destination in reader.named_destinations.items()}


def add_outline(pdf: Path, entries: list[Entry], numbers: dict[str, int], out: Path,
                title: str) -> None:
    """Bookmarks, nested by level, for every entry whose page is known; the outline shown when
    the file opens."""
    writer = PdfWriter(clone_from=PdfReader(pdf))
    parents: dict[int, object] = {}
    for entry in entries:
        if entry.anchor not in numbers:
            continue
        parent = next((parents[level] for level in range(entry.level - 1, -1, -1)
                       if level in parents), None)
        parents[entry.level] = writer.add_outline_item(
            title=entry.label, page_number=numbers[entry.anchor] - 1, parent=parent)
        for deeper in [level for level in parents if level > entry.level]:
            del parents[deeper]
    writer.page_mode = "/UseOutlines"
    writer.add_metadata({"/Title": title, "/Author": "the nextloc developers"})
    with open(out, "wb") as handle:
        writer.write(handle)


def uri_links(pdf: Path) -> list[str]:
    """The URIs the PDF's links open (internal links to its own pages are not URIs)."""
    uris = []
    for page in PdfReader(pdf).pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A") or {}
            if "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


def outline_titles(pdf: Path) -> list[str]:
    """The bookmarks' titles, depth first."""
    def walk(items) -> list[str]:
        titles = []
        for item in items:
            titles += walk(item) if isinstance(item, list) else [item.title]
        return titles
    return walk(PdfReader(pdf).outline)


def count_pages(pdf: Path) -> int:
    return len(PdfReader(pdf).pages)


def blank_pages(pdf: Path) -> list[int]:
    """Pages (from 1) with no text but their page number and no image."""
    blank = []
    for number, page in enumerate(PdfReader(pdf).pages, start=1):
        text = re.sub(r"\s+", "", page.extract_text() or "")
        has_image = bool(page.get("/Resources", {}).get("/XObject"))
        if not has_image and re.fullmatch(r"(\d+(/\d+)?)?", text):
            blank.append(number)
    return blank


def make_pdf(document: Document, browser: str, out: Path, title: str) -> tuple[Path, int]:
    """Print twice (the second time with the contents' page numbers), then add bookmarks."""
    first = print_pdf(browser, document.write(), out.with_suffix(".pass1.pdf"))
    numbers = destination_pages(first)
    second = print_pdf(browser, document.write(numbers), out.with_suffix(".pass2.pdf"))
    final = destination_pages(second)
    if final != numbers:  # a page number changed the contents' length: once more
        numbers = final
        second = print_pdf(browser, document.write(numbers), second)
    add_outline(second, document.entries, numbers, out, title)
    first.unlink(missing_ok=True)
    second.unlink(missing_ok=True)
    return out, count_pages(out)


def write_pdf(html: Path = HTML, out: Path = PDF, runs_out: Path | None = RUNS_PDF,
              print_dir: Path = PRINT_DIR) -> list[tuple[Path, int]]:
    """The report, and (unless ``runs_out`` is None) the run pages' supplement."""
    browser = find_browser()
    if not (html / ROOT_PAGE).is_file():
        raise NextlocError(f"{html / ROOT_PAGE} not found: build the book first (make book).")
    pages = page_order(html)
    report = [page for page in pages if not is_run_page(page)]
    runs = [page for page in pages if is_run_page(page)]
    written = [make_pdf(print_document(
        report, html, print_dir / "book.html",
        subtitle="The report. The record of every run, each seed's settings, metrics and "
                 f"learning curves, is a separate file: {RUNS_PDF.name}."),
        browser, out, "nextloc: the report")]
    if runs and runs_out is not None:
        written.append(make_pdf(print_document(
            runs, html, print_dir / "runs.html", runs=True,
            subtitle=f"Supplement to {PDF.name}: the record of every run, one page per "
                     "experiment and one per seed."),
            browser, runs_out, "nextloc: the runs"))
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        written = write_pdf(runs_out=None if "--no-runs" in argv else RUNS_PDF)
    except NextlocError as err:
        print(f"nextloc pdf: error: {err}", file=sys.stderr)
        return 2
    for path, pages in written:
        blank = blank_pages(path)
        local = [uri for uri in uri_links(path) if not uri.lower().startswith(("http", "mailto"))]
        print(f"{path.relative_to(paths.PROJECT_ROOT)}: {pages} pages, "
              f"{len(outline_titles(path))} bookmarks"
              + (f"; blank pages: {blank}" if blank else "")
              + (f"; links to local files: {local[:5]}" if local else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
