"""`aidetect scan --report DIR`: what the page holds, then the page in a real headless browser (Debian's
chromium driven by Playwright, opened from disk): every row, sorting, filtering, no broken image or link."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from helpers import SCAN_OPTIONS, run_cli, write_image
from PIL import Image

CHROMIUM = Path(os.environ.get("AIDETECT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _varied_images(root: Path) -> None:
    """Images that the tiny model scores apart: noise, gradients, flat colours; two named a.png."""
    for folder in ("x", "y"):
        (root / folder).mkdir()
    write_image(root / "x" / "a.png", 90, 60, seed=1)
    write_image(root / "y" / "a.png", 60, 90, seed=2)
    write_image(root / "wide.jpg", 1500, 600, seed=3, quality=80)
    rows, cols = np.mgrid[0:150, 0:200]
    gradient = np.stack([cols * 255 // 199, rows * 255 // 149, np.full_like(cols, 90)], axis=2).astype(np.uint8)
    Image.fromarray(gradient).save(root / "gradient.png")
    Image.new("RGB", (120, 120), (200, 30, 40)).save(root / "red & <b>bold.png")
    (root / "notes.jpg").write_text("shopping list\n")


@pytest.fixture(scope="module")
def scanned(tiny_checkpoint, tmp_path_factory):
    """(report folder, scan JSON document) of a folder with five images and one unreadable file."""
    root = tmp_path_factory.mktemp("images")
    _varied_images(root)
    plain = json.loads(run_cli("scan", "-w", tiny_checkpoint, "--json", *SCAN_OPTIONS, root).stdout)
    probabilities = sorted(r["probability"] for r in plain["results"] if r["error"] is None)
    split = (probabilities[1] + probabilities[2]) / 2  # both verdicts in the table, to filter on
    out = tmp_path_factory.mktemp("report")
    result = run_cli("scan", "-w", tiny_checkpoint, "--json", *SCAN_OPTIONS, "--threshold", split, root, "--report", out)
    assert result.exit_code == 1, result.output  # notes.jpg is unreadable
    return out, json.loads(result.stdout)


class _Page(HTMLParser):
    """Table rows (their data- attributes), every src/href, and the error items of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.links: list[str] = []
        self.errors: list[str] = []
        self._in_errors = self._in_item = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-path" in attrs:
            self.rows.append(attrs)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        self._in_errors |= tag == "section" and attrs.get("id") == "errors"
        if self._in_errors and tag == "li":
            self.errors.append("")
            self._in_item = True

    def handle_endtag(self, tag):
        self._in_item &= tag != "li"

    def handle_data(self, data):
        if self._in_item:
            self.errors[-1] += data


def test_report_lists_every_image_with_working_links(scanned):
    out, doc = scanned
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    good = [r for r in doc["results"] if r["error"] is None]
    assert sorted(r["data-path"] for r in page.rows) == sorted(r["path"] for r in good)
    by_path = {r["path"]: r for r in good}
    for row in page.rows:
        assert float(row["data-probability"]) == by_path[row["data-path"]]["probability"]
        assert row["data-verdict"] == by_path[row["data-path"]]["verdict"]["label"]
    assert len(page.errors) == 1 and "notes.jpg" in page.errors[0] and "not an image" in page.errors[0]
    for link in page.links:  # relative, inside the report folder, present: the page needs nothing else
        assert not urlparse(link).scheme and not link.startswith("/"), link
        assert (out / unquote(link)).is_file(), link
    pictures = sorted(p.name for p in (out / "explain").glob("*.png"))
    assert pictures == sorted(["a.explain.png", "a-2.explain.png", "wide.explain.png", "gradient.explain.png",
                               "red_b_bold.explain.png"])


def test_histogram_counts_every_readable_image(scanned):
    from aidetect.render.html_report import histogram_svg

    out, doc = scanned
    svg = (out / "index.html").read_text(encoding="utf-8")
    counts = [int(part.split('"')[0]) for part in svg.split('data-count="')[1:]]
    assert sum(counts) == 5 and len(counts) == 20
    assert histogram_svg([0.0, 0.5, 0.99, 1.0], 0.5).count('class="bar generated"') == 10
    banded = histogram_svg([0.0, 0.5, 0.99, 1.0], 0.8, lower_threshold=0.2)
    assert banded.count('class="bar uncertain"') == 12 and "lower 0.2" in banded and "threshold 0.8" in banded


def _chromium_context(playwright, profile: Path):
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def _visible_paths(page) -> list[str]:
    return page.eval_on_selector_all("#results tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.path)")


def test_report_in_headless_chromium(scanned, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
    out, doc = scanned
    good = {r["path"]: r for r in doc["results"] if r["error"] is None}
    with sync_api.sync_playwright() as playwright:
        context = _chromium_context(playwright, tmp_path / "profile")
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            script_errors, outside = [], []
            page.on("pageerror", lambda exc: script_errors.append(str(exc)))
            page.on("request", lambda req: None if req.url.startswith(("file:", "data:")) else outside.append(req.url))
            page.goto((out / "index.html").as_uri())

            assert sorted(_visible_paths(page)) == sorted(good)
            assert page.inner_text("#shown") == f"{len(good)} of {len(good)} shown"

            header = "th[data-key=probability]"
            page.click(f"{header} button")
            shown = [float(t) for t in page.eval_on_selector_all("#results tbody tr td:nth-child(3)",
                                                                 "cells => cells.map(c => c.textContent)")]
            assert shown == sorted(shown) and page.get_attribute(header, "aria-sort") == "ascending"
            assert [good[p]["probability"] for p in _visible_paths(page)] == sorted(r["probability"] for r in good.values())
            page.click(f"{header} button")
            assert [good[p]["probability"] for p in _visible_paths(page)] == sorted(
                (r["probability"] for r in good.values()), reverse=True)
            assert page.get_attribute(header, "aria-sort") == "descending"

            page.fill("#filter", "a.png")
            assert sorted(_visible_paths(page)) == sorted(p for p in good if "a.png" in p)
            page.fill("#filter", "")
            for verdict, count in (("no sign of generation", 2), ("generated", 3)):
                page.select_option("#verdict", verdict)
                assert sorted(_visible_paths(page)) == sorted(p for p, r in good.items() if r["verdict"]["label"] == verdict)
                assert len(_visible_paths(page)) == count
            page.select_option("#verdict", "")

            for image in page.query_selector_all("img"):  # thumbnails load lazily: bring each into view
                image.scroll_into_view_if_needed()
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == len(good) and all(w > 0 for w in widths), widths
            for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                assert href.startswith("file://") and Path(unquote(urlparse(href).path)).is_file(), href
            assert "notes.jpg" in page.inner_text("#errors")
            assert not script_errors and not outside, (script_errors, outside)

            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"report screenshot: {screenshot}")
        finally:
            context.close()


def test_report_into_a_file_is_a_usage_error(tiny_checkpoint, tmp_path):
    blocker = tmp_path / "report"
    blocker.write_text("")
    result = run_cli("scan", "-w", tiny_checkpoint, *SCAN_OPTIONS, write_image(tmp_path / "a.png"), "--report", blocker)
    assert result.exit_code == 2 and "--report" in result.stderr
