"""The HTML report in Debian's Chromium: summary first, blocked and review items first, asset
titles and rightsholders, the matched region boxed, filters and paging."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from tests.registry.clearance import synthetic

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="!!! Debian chromium is not installed: report browser test SKIPPED !!!")
def test_the_report_opens_on_what_needs_someone_and_filters_and_pages(
    tmp_path: Path, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with session_factory.begin() as session:
        job_id = synthetic.make_job(session, store, items=400, folder=tmp_path / "dataset")
    with session_factory() as session:
        html, _ = clearance.render_report(session, clearance.get_job(session, job_id), "html",
                                          store=store)
    page_file = tmp_path / "report.html"
    page_file.write_text(html, encoding="utf-8")
    assert str(tmp_path) not in html  # the page names the dataset, not its server path
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        rows = page.locator("#rows tr")
        expect(rows).to_have_count(50)
        expect(rows.first.locator("td").nth(1)).to_have_text("blocked")
        expect(rows.first).to_contain_text("a copy of “chelsea”")
        expect(rows.first).to_contain_text("(Northwind)")
        expect(rows.first.locator(".box")).to_have_count(1)  # the matched region, boxed
        expect(page.locator("#where")).to_have_text("items 1-50 of 400")
        assert "similar to" in page.locator("#rows").inner_text()  # pdq at 28 of 31 bits

        page.select_option("#f-holder", "Harbor Studio")
        expect(page.locator("#where")).to_contain_text(" of ")
        verdicts = set(page.locator("#rows tr td:nth-child(2)").all_inner_texts())
        assert {v.split()[0] for v in verdicts} <= {"blocked", "review"}
        page.select_option("#f-holder", "")
        page.select_option("#f-signal", "opt-out: tdmrep")
        expect(page.locator("#rows tr")).to_have_count(5)  # items 5, 102, 199, 296, 393
        page.select_option("#f-signal", "")
        page.click(".card.error")
        expect(page.locator("#where")).to_have_text("items 1-8 of 8")
        page.select_option("#f-verdict", "")
        page.click("#next")
        expect(page.locator("#where")).to_have_text("items 51-100 of 400")
        browser.close()
