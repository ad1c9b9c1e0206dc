"""The print documents of ``make pdf`` (:mod:`nextloc.report.pdf`): the built HTML pages joined into
one HTML file per PDF, with a title page, a contents page and numbered headings.

Each page's article only, without navigation or permalinks; its element ids prefixed by its page
so that they stay unique; links to pages of the same document made internal; every other link
that is not a public URL (a run page from the report, a download, a local file) turned into
plain text, so that no ``file://`` link or machine path reaches the PDF.
"""
from __future__ import annotations

import os
import posixpath
import re
import subprocess
from datetime import date
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

from nextloc.core import paths

HTML = paths.BUILD / "html"
PRINT_DIR = paths.BUILD / "print"
ROOT_PAGE = "book/intro.html"
RUN_PAGE = re.compile(r"^book/runs/[^/]+/(index|seed_\d+)\.html$")
PUBLIC = re.compile(r"^(https?|mailto):", re.IGNORECASE)
PLACEHOLDER = "000"
WIDE_TABLE = 11  # a table of this many columns is printed smaller
def page_order(html: Path = HTML, root: str = ROOT_PAGE) -> list[str]:
    """The built pages, first to last, following each page's ``<link rel="next">``."""
    pages, page = [], root
    while page and page not in pages:
        pages.append(page)
        text = (html / page).read_text(encoding="utf-8")
        head = text[:text.find("</head>")] if "</head>" in text else text
        link = BeautifulSoup(head, "html.parser").find("link", rel="next")
        page = (posixpath.normpath(posixpath.join(posixpath.dirname(page), link["href"]))
                if link else None)
    return pages


def is_run_page(page: str) -> bool:
    """A run page (``book/runs/NAME/seed_N.html``) or an experiment's page of runs."""
    return bool(RUN_PAGE.match(page))


def page_id(page: str) -> str:
    """An id for a page inside the print document: its path, made safe."""
    return "p-" + re.sub(r"[^A-Za-z0-9]+", "-", page.removesuffix(".html")).strip("-")


def rewrite_links(article, page: str, prefix: str, pages: set[str] | None = None) -> None:
    """Make the article fit into one print document holding ``pages``: ids prefixed by the
    page's id; links to those pages internal (``#p-...``); public URLs kept; every other link
    made plain text; images and other resources relative to the print document."""
    own = page_id(page)
    for tag in article.find_all(id=True):
        tag["id"] = f"{own}--{tag['id']}"
    for tag in article.find_all(["img", "source", "object", "link"]):
        for attribute in ("src", "data", "href"):
            url = tag.get(attribute)
            if url and not url.startswith("#") and not re.match(r"^[a-z]+:", url):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(page), url))
                tag[attribute] = f"{prefix}/{target}"
    for link in article.find_all("a"):
        href = link.get("href")
        if href is None or PUBLIC.match(href):
            continue
        if href.startswith("#"):
            link["href"] = f"#{own}--{href[1:]}" if href[1:] else f"#{own}"
            continue
        path, _, fragment = href.partition("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
        if re.match(r"^[a-z]+:", href) or href.startswith("/") or target not in (pages or ()):
            link.unwrap()
        else:
            link["href"] = f"#{page_id(target)}--{fragment}" if fragment else f"#{page_id(target)}"


def toc_places(toc_file: Path | None = None) -> dict[str, tuple[str, str]]:
    """Every page of ``_toc.yml`` (as ``.html``) -> (its part's caption, its chapter's page)."""
    toc = yaml.safe_load((toc_file or paths.PROJECT_ROOT / "_toc.yml").read_text())
    places = {f"{toc['root']}.html": ("", f"{toc['root']}.html")}

    def visit(entries: list[dict], caption: str, chapter: str | None) -> None:
        for entry in entries:
            page = f"{entry['file']}.html" if "file" in entry else None
            if page:
                places[page] = (caption, chapter or page)
            visit(entry.get("sections", []), caption, chapter or page)

    for part in toc.get("parts", []):
        visit(part["chapters"], part.get("caption", ""), None)
    return places


def git_stamp() -> str:
    """``YYYY-MM-DD, commit abc1234`` of the checkout, or today's date outside git."""
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%cs, commit %h"],
                              cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except OSError:
        pass
    return date.today().isoformat()


def title_page(subtitle: str) -> str:
    """The first page: the book's title (from _config.yml), what this file holds, the date."""
    config = yaml.safe_load((paths.PROJECT_ROOT / "_config.yml").read_text())
    title, _, rest = config.get("title", "nextloc").partition(": ")
    return (f'<section class="title-page"><p class="title-main">{title}</p>'
            f'<p class="title-sub">{rest}</p><p class="title-what">{subtitle}</p>'
            f'<p class="title-meta">{config.get("author", "")}<br>{git_stamp()}</p></section>')


class Entry:
    """A heading of the print document: its level (0 part, 1 chapter or experiment, 2 section
    or seed, 3 subsection), number, title, anchor, and whether the contents list it."""

    def __init__(self, level: int, number: str, title: str, anchor: str, listed: bool):
        self.level, self.number, self.title = level, number, title
        self.anchor, self.listed = anchor, listed

    @property
    def label(self) -> str:
        return f"{self.number} {self.title}" if self.number else self.title


def take_headings(article, chapter: int | None, first: int, runs: bool) -> list[Entry]:
    """The article's headings as entries, anchors ``toc-N`` from ``first``; with a chapter
    number, numbers put in front of the headings (1, 1.2, 1.2.3)."""
    entries, counts = [], [0, 0]
    for link in article.select("a.headerlink"):
        link.decompose()
    for heading in article.find_all(["h1", "h2", "h3"]):
        level = 1 if heading.name == "h1" and not entries else max(2, int(heading.name[1]))
        if runs and level > 1:
            continue
        if level == 2:
            counts = [counts[0] + 1, 0]
        elif level == 3:
            counts[1] += 1
        number = "" if chapter is None else ".".join(
            str(n) for n in [chapter, *counts][:level])
        anchor = f"toc-{first + len(entries)}"
        title = heading.get_text(" ", strip=True)
        heading["id"] = anchor
        if number:
            heading.insert(0, BeautifulSoup(f'<span class="secnum">{number}</span> ',
                                            "html.parser"))
        entries.append(Entry(level, number, title, anchor, listed=level <= 2))
    return entries


def contents(entries: list[Entry], numbers: dict[str, int] | None = None) -> str:
    """The contents page(s): listed entries with their page numbers (placeholders until the
    first print has told them), and hidden links to every entry, so that Chromium writes a named
    destination for each."""
    lines = ['<nav class="print-toc"><h1 class="toc-title">Contents</h1>']
    for entry in entries:
        if not entry.listed:
            continue
        page = str(numbers.get(entry.anchor, "")) if numbers else PLACEHOLDER
        lines.append(f'<a class="toc-entry toc-l{entry.level}" href="#{entry.anchor}">'
                     f'<span class="toc-num">{entry.number}</span>'
                     f'<span class="toc-text">{entry.title}</span>'
                     f'<span class="toc-page">{page}</span></a>')
    lines.append('<div class="print-targets">' + "".join(
        f'<a href="#{entry.anchor}"></a>' for entry in entries) + "</div></nav>")
    return "\n".join(lines)


class Document:
    """A print document: its stylesheets, title page, headings and pages; ``write`` puts it in
    ``path`` with the contents' page numbers once they are known."""

    def __init__(self, path: Path, head: str, front: str, entries: list[Entry], body: str):
        self.path, self.head, self.front, self.entries, self.body = path, head, front, entries, body

    def write(self, numbers: dict[str, int] | None = None) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            f'<!DOCTYPE html>\n<html lang="en" data-theme="light"><head><meta charset="utf-8">'
            f"<title>nextloc</title>\n{self.head}</head>\n<body class=\"print-book\">\n"
            f"{self.front}\n{contents(self.entries, numbers)}\n{self.body}\n</body></html>\n",
            encoding="utf-8")
        return self.path


def stylesheets(first_page: Path, page: str, prefix: str) -> str:
    """The book's stylesheets (from its first page) and print.css, relative to the document."""
    soup = BeautifulSoup(first_page.read_text(encoding="utf-8"), "html.parser")
    links = [link for link in soup.find_all("link") if "stylesheet" in (link.get("rel") or [])]
    for link in links:
        if link.get("href") and not re.match(r"^[a-z]+:", link["href"]):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), link["href"]))
            link["href"] = f"{prefix}/{target}"
    return "\n".join(str(link) for link in links) + (
        f'\n<link rel="stylesheet" href="{prefix}/_static/print.css">')


def mark_wide_tables(article) -> None:
    """Class ``print-wide-table`` on every table of WIDE_TABLE or more columns (print.css
    prints them smaller, so that they fit the page without breaking every word)."""
    for table in article.find_all("table"):
        row = table.select_one("thead tr") or table.find("tr")
        if row is not None and len(row.find_all(["th", "td"])) >= WIDE_TABLE:
            table["class"] = [*table.get("class", []), "print-wide-table"]


def chapter_title(html: Path, page: str) -> str:
    """The first heading of a built page, without its permalink."""
    soup = BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")
    heading = soup.find("h1")
    if heading is None:
        return ""
    for link in heading.select("a.headerlink"):
        link.decompose()
    return heading.get_text(" ", strip=True)


def print_document(pages: list[str], html: Path = HTML, out: Path = PRINT_DIR / "book.html",
                   runs: bool = False, subtitle: str = "") -> Document:
    """One HTML document holding every page's article, in order, and its headings. The report
    (``runs=False``) numbers its chapters and groups them under the table of contents' parts;
    the runs supplement groups experiments under the chapters that discuss them."""
    prefix = os.path.relpath(html, out.parent)
    places = toc_places() if (paths.PROJECT_ROOT / "_toc.yml").is_file() else {}
    entries, sections, group, pending = [], [], None, None
    for number, page in enumerate(pages, start=1):
        soup = BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")
        article = soup.find("article") or soup.body
        for dropped in article.select("div.toctree-wrapper, script, style[data-print-drop]"):
            dropped.decompose()
        rewrite_links(article, page, prefix, set(pages))
        caption, chapter_page = places.get(page, ("", page))
        if runs:  # experiments under the chapter that discusses them
            new_group = chapter_title(html, chapter_page) if page in places else None
        else:
            new_group = caption
        if new_group and new_group != group:
            pending = Entry(0, "", new_group, "", listed=True)
            entries.append(pending)
        group = new_group
        found = take_headings(article, None if runs else number, len(entries), runs)
        if runs and found and not page.endswith("/index.html"):
            found[0].level, found[0].listed = 2, False
        if pending and found:
            pending.anchor, pending = found[0].anchor, None
        entries += found
        kind = ("print-run" if page.endswith("/index.html") else "print-seed") if runs else ""
        mark_wide_tables(article)
        sections.append(f'<section class="print-page {kind}" id="{page_id(page)}">'
                        f"{article.decode_contents()}</section>")
    entries = [entry for entry in entries if entry.anchor]
    head = stylesheets(html / pages[0], pages[0], prefix)
    return Document(out, head, title_page(subtitle), entries, "\n".join(sections))
