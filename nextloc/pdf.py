"""The whole book as one A4 PDF: ``make pdf`` (``python -m nextloc.pdf``).

The built HTML pages are joined, in the order of the book's "next" links (the table of
contents), into one print document: each page's article only, without the navigation, with
relative links rewritten, styled by ``_static/print.css``. Headless Chromium prints it in one
go, so the page numbers run through the whole book and every figure stays a vector image.
(Printing each page to its own PDF and merging would need a PDF library and restarts the page
numbers on every page.) The browser is a system package; without it this stops with a message
saying how to get it.
"""
from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bs4 import BeautifulSoup

from nextloc.paths import PROJECT_ROOT
from nextloc.errors import NextlocError

HTML = PROJECT_ROOT / "_build" / "html"
PRINT = PROJECT_ROOT / "_build" / "print" / "book.html"
PDF = PROJECT_ROOT / "_build" / "pdf" / "nextloc.pdf"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ROOT_PAGE = "book/intro.html"


def find_browser() -> str:
    """The Chromium executable: ``$CHROMIUM``, else the first of BROWSERS on the PATH."""
    for candidate in [os.environ.get("CHROMIUM"), *BROWSERS]:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise NextlocError("no Chromium browser found for printing the PDF. Install it (Debian or "
                       "Ubuntu: `sudo apt-get install chromium`) or set CHROMIUM to the path "
                       "of Chromium or Google Chrome.")


def page_order(html: Path = HTML, root: str = ROOT_PAGE) -> list[str]:
    """The built pages, first to last, following each page's ``<link rel="next">``."""
    pages, page = [], root
    while page and page not in pages:
        pages.append(page)
        soup = BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")
        link = soup.find("link", rel="next")
        page = (posixpath.normpath(posixpath.join(posixpath.dirname(page), link["href"]))
                if link else None)
    return pages


def rewrite_links(article, page: str, prefix: str) -> None:
    """Make the article's relative URLs relative to the print document."""
    for tag in article.find_all(["img", "a", "source", "object", "link"]):
        for attribute in ("src", "href", "data"):
            url = tag.get(attribute)
            if not url or url.startswith("#") or re.match(r"^[a-z]+:", url):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), url))
            tag[attribute] = f"{prefix}/{target}"


def print_document(pages: list[str], html: Path = HTML, out: Path = PRINT) -> Path:
    """One HTML document holding every page's article, in order."""
    prefix = os.path.relpath(html, out.parent)
    first = BeautifulSoup((html / pages[0]).read_text(encoding="utf-8"), "html.parser")
    styles = [link for link in first.find_all("link") if "stylesheet" in (link.get("rel") or [])]
    rewrite_links(first.head, pages[0], prefix)
    parts = []
    for page in pages:
        soup = BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")
        article = soup.find("article") or soup.body
        rewrite_links(article, page, prefix)
        parts.append(f'<section class="print-page">{article.decode_contents()}</section>')
    head = "\n".join(str(link) for link in styles)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f'<!DOCTYPE html>\n<html lang="en" data-theme="light"><head><meta charset="utf-8">'
        f"<title>{first.title.string if first.title else 'nextloc'}</title>\n{head}\n"
        f'<link rel="stylesheet" href="{prefix}/_static/print.css"></head>\n'
        f'<body class="print-book">\n' + "\n".join(parts) + "\n</body></html>\n",
        encoding="utf-8")
    return out


def count_pages(pdf: Path) -> int:
    """Pages of a PDF written by Chromium (its page objects are not compressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


def write_pdf(html: Path = HTML, out: Path = PDF) -> tuple[Path, int]:
    browser = find_browser()
    if not (html / ROOT_PAGE).is_file():
        raise NextlocError(f"{html / ROOT_PAGE} not found: build the book first (make book).")
    document = print_document(page_order(html))
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={out}", document.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not out.is_file():
        raise NextlocError(f"{browser} could not print {document}: {done.stderr[-2000:]}")
    return out, count_pages(out)


def main() -> int:
    try:
        path, pages = write_pdf()
    except NextlocError as err:
        print(f"nextloc pdf: error: {err}", file=sys.stderr)
        return 2
    print(f"{path} ({pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
