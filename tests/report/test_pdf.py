"""`make pdf`: the print document (page order, links, headings, contents) and, where Chromium is
installed, the printed PDFs: bookmarks, no link to a local file, at most 120 pages."""
from __future__ import annotations

import shutil

import pytest
from bs4 import BeautifulSoup
from pypdf import PdfWriter

import nextloc.report.pdf
from nextloc.core.errors import NextlocError
from nextloc.report.pdf import (PDF, RUNS_PDF, blank_pages, count_pages, find_browser,
                                outline_titles, uri_links, write_pdf)
from nextloc.report.printdoc import page_order, print_document, rewrite_links, take_headings

HAS_BROWSER = any(shutil.which(name) for name in nextloc.report.pdf.BROWSERS)


def page(title: str, next_href: str | None, body: str) -> str:
    link = f'<link rel="next" href="{next_href}" />' if next_href else ""
    return (f'<html><head><title>{title}</title>'
            f'<link rel="stylesheet" href="../_static/theme.css" />{link}</head>'
            f'<body><nav>menu</nav><article class="bd-article">{body}</article></body></html>')


@pytest.fixture
def site(tmp_path):
    html = tmp_path / "html"
    (html / "book" / "runs" / "x").mkdir(parents=True)
    (html / "book" / "intro.html").write_text(page(
        "Intro", "runs/x/seed_1.html",
        '<section id="intro"><h1>Intro<a class="headerlink" href="#intro">#</a></h1>'
        '<img src="../_images/a.svg"><p><a href="runs/x/seed_1.html">a run</a>, '
        '<a href="last.html#end">the end</a>, <a href="https://example.org/">public</a>, '
        '<a href="file:///home/me/_build/html/book/last.html">local</a>, '
        '<a href="../_downloads/metrics.csv">download</a></p>'
        '<section id="s"><h2>Section</h2><h3>Sub</h3></section></section>'))
    (html / "book" / "runs" / "x" / "seed_1.html").write_text(page(
        "Run", "../../last.html", '<h1>x, seed 1</h1><p>run</p><img src="../../../_images/b.png">'
                                  '<a href="#here">here</a><span id="here"></span>'))
    (html / "book" / "last.html").write_text(page(
        "Last", None, '<section id="end"><h1>Last</h1><p>the end</p></section>'))
    return html


def test_page_order_follows_the_next_links(site):
    assert page_order(site) == ["book/intro.html", "book/runs/x/seed_1.html", "book/last.html"]


def test_print_document_holds_every_article_with_links_from_its_folder(site, tmp_path):
    out = print_document(page_order(site), site, tmp_path / "print" / "book.html").write()
    text = out.read_text()
    assert text.count('class="print-page') == 3
    assert "menu" not in text                                # navigation left out
    assert 'src="../html/_images/a.svg"' in text             # from book/intro.html
    assert 'src="../html/_images/b.png"' in text             # from book/runs/x/seed_1.html
    assert 'href="#p-book-runs-x-seed-1--here"' in text      # anchors prefixed by their page
    assert 'id="p-book-runs-x-seed-1--here"' in text
    assert 'href="../html/_static/theme.css"' in text
    assert 'href="../html/_static/print.css"' in text
    assert 'class="title-page"' in text and 'class="print-toc"' in text
    assert text.index("Intro") < text.index("run") < text.index("the end")


def test_links_stay_inside_the_document_or_go_to_public_urls(site):
    soup = BeautifulSoup((site / "book" / "intro.html").read_text(), "html.parser")
    article = soup.find("article")
    rewrite_links(article, "book/intro.html", "../html", {"book/intro.html", "book/last.html"})
    hrefs = [a.get("href") for a in article.find_all("a")]
    assert "#p-book-last--end" in hrefs                      # another page of the document
    assert "https://example.org/" in hrefs                   # public
    assert not [h for h in hrefs if h and ("file:" in h or ".html" in h or ".csv" in h)]
    assert "a run" in article.get_text() and "local" in article.get_text()   # text kept


def test_headings_are_numbered_and_anchored():
    soup = BeautifulSoup('<article><h1>A<a class="headerlink" href="#a">#</a></h1><h2>B</h2>'
                         '<h3>C</h3><h2>D</h2></article>', "html.parser")
    entries = take_headings(soup.article, 3, 10, runs=False)
    assert [(e.level, e.number, e.title, e.anchor) for e in entries] == [
        (1, "3", "A", "toc-10"), (2, "3.1", "B", "toc-11"), (3, "3.1.1", "C", "toc-12"),
        (2, "3.2", "D", "toc-13")]
    assert soup.h2.get_text(" ", strip=True) == "3.1 B" and "#" not in soup.h1.get_text()


def test_a_missing_browser_stops_with_advice(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "")
    monkeypatch.setattr(nextloc.report.pdf.shutil, "which", lambda name: None)
    with pytest.raises(NextlocError, match="apt-get install chromium"):
        find_browser()


def test_the_browser_can_be_named(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "my-chrome")
    monkeypatch.setattr(nextloc.report.pdf.shutil, "which",
                        lambda name: f"/opt/{name}" if name == "my-chrome" else None)
    assert find_browser() == "/opt/my-chrome"


def test_count_pages(tmp_path):
    writer = PdfWriter()
    for _ in range(2):
        writer.add_blank_page(595, 842)
    with open(tmp_path / "x.pdf", "wb") as handle:
        writer.write(handle)
    assert count_pages(tmp_path / "x.pdf") == 2
    assert blank_pages(tmp_path / "x.pdf") == [1, 2]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BROWSER, reason="Chromium is not installed (apt-get install chromium)")
def test_printed_pdfs_have_bookmarks_and_no_local_links(site, tmp_path):
    report, runs = tmp_path / "report.pdf", tmp_path / "runs.pdf"
    written = write_pdf(site, report, runs, print_dir=tmp_path / "print")
    assert [path for path, _ in written] == [report, runs]
    assert outline_titles(report) == ["1 Intro", "1.1 Section", "1.1.1 Sub", "2 Last"]
    assert outline_titles(runs) == ["x, seed 1"]
    for path in (report, runs):
        assert not [uri for uri in uri_links(path) if not uri.startswith("https://")]
        assert blank_pages(path) == []
    assert uri_links(report) == ["https://example.org/"]


@pytest.mark.skipif(not PDF.is_file(), reason="no _build/pdf/nextloc.pdf: run `make pdf`")
def test_the_report_pdf_is_short_with_bookmarks_and_no_local_links():
    assert count_pages(PDF) <= 120
    assert len(outline_titles(PDF)) >= 20
    assert not [uri for uri in uri_links(PDF) if not uri.startswith(("https://", "http://"))]
    assert blank_pages(PDF) == []


@pytest.mark.skipif(not RUNS_PDF.is_file(), reason="no _build/pdf/nextloc-runs.pdf")
def test_the_runs_pdf_has_a_bookmark_per_experiment_and_no_local_links():
    assert len(outline_titles(RUNS_PDF)) >= 100
    assert not [uri for uri in uri_links(RUNS_PDF) if not uri.startswith(("https://", "http://"))]
