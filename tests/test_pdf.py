"""The print document of `make pdf`: page order, links, the missing-browser message."""
from __future__ import annotations

import pytest

import nextloc.pdf
from nextloc.errors import NextlocError
from nextloc.pdf import count_pages, find_browser, page_order, print_document


def page(title: str, next_href: str | None, body: str) -> str:
    link = f'<link rel="next" href="{next_href}" />' if next_href else ""
    return (f'<html><head><title>{title}</title>'
            f'<link rel="stylesheet" href="../_static/theme.css" />{link}</head>'
            f'<body><nav>menu</nav><article class="bd-article">{body}</article></body></html>')


@pytest.fixture
def site(tmp_path):
    html = tmp_path / "html"
    (html / "book" / "runs" / "x").mkdir(parents=True)
    (html / "book" / "intro.html").write_text(
        page("Intro", "runs/x/seed_1.html", '<h1>Intro</h1><img src="../_images/a.svg">'))
    (html / "book" / "runs" / "x" / "seed_1.html").write_text(
        page("Run", "../../last.html", '<p>run</p><img src="../../../_images/b.png">'
                                       '<a href="#here">here</a>'))
    (html / "book" / "last.html").write_text(page("Last", None, "<p>the end</p>"))
    return html


def test_page_order_follows_the_next_links(site):
    assert page_order(site) == ["book/intro.html", "book/runs/x/seed_1.html", "book/last.html"]


def test_print_document_holds_every_article_with_links_from_its_folder(site, tmp_path):
    out = print_document(page_order(site), site, tmp_path / "print" / "book.html")
    text = out.read_text()
    assert text.count('<section class="print-page">') == 3
    assert "menu" not in text                                # navigation left out
    assert 'src="../html/_images/a.svg"' in text             # from book/intro.html
    assert 'src="../html/_images/b.png"' in text             # from book/runs/x/seed_1.html
    assert 'href="#here"' in text                            # anchors untouched
    assert 'href="../html/_static/theme.css"' in text
    assert 'href="../html/_static/print.css"' in text
    assert text.index("Intro") < text.index("run") < text.index("the end")


def test_a_missing_browser_stops_with_advice(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "")
    monkeypatch.setattr(nextloc.pdf.shutil, "which", lambda name: None)
    with pytest.raises(NextlocError, match="apt-get install chromium"):
        find_browser()


def test_the_browser_can_be_named(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "my-chrome")
    monkeypatch.setattr(nextloc.pdf.shutil, "which",
                        lambda name: f"/opt/{name}" if name == "my-chrome" else None)
    assert find_browser() == "/opt/my-chrome"


def test_count_pages_counts_page_objects_not_the_page_tree(tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >> endobj\n"
                    b"2 0 obj << /Type /Page /Parent 1 0 R >> endobj\n"
                    b"3 0 obj <</Type/Page/Parent 1 0 R>> endobj\n")
    assert count_pages(pdf) == 2
