"""The legal console in a real browser: Debian's Chromium driven by Playwright (never downloaded).

Skipped, loudly, where /usr/bin/chromium is missing (`make test` installs it as root).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from registry.access import create_api_key
from registry.catalog import ImportOptions, import_paths
from registry.db import session_scope
from registry.settings import Settings
from tests.photos import skimage_photo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="!!! Debian chromium is not installed: console tests SKIPPED !!!"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_app(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    app = create_app(settings)
    factory = app.state.session_factory
    import_paths(
        factory,
        app.state.store,
        [skimage_photo(n) for n in ("astronaut.png", "coffee.png", "chelsea.png")],
        ImportOptions(rightsholder="Northwind Games", franchise="Skyreach"),
    )
    keys = {}
    with session_scope(factory) as session:
        for role in ("legal", "partner"):
            keys[role] = create_api_key(session, name=f"{role}-user", role=role)[1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", keys
    server.should_exit = True
    thread.join(5)
    app.state.engine.dispose()


@pytest.fixture
def settings(home: Path, db_url: str) -> Settings:
    return Settings(home=home, database_url=db_url)


def test_a_legal_user_logs_in_browses_searches_and_opens_an_asset(
    live_app: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, keys = live_app
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        page.goto(f"{base}/console/assets")
        expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole%2Fassets")

        page.fill("input[name=key]", "ch_nothing_here")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text("unknown API key")

        page.fill("input[name=key]", keys["legal"])
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base}/console/assets")
        expect(page.locator(".card")).to_have_count(3)
        expect(page.locator("#asset-count")).to_have_text("3 assets")
        page.wait_for_function(
            "[...document.querySelectorAll('.card img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(tmp_path / "console-assets.png"))

        page.fill("input[name=q]", "coff")  # htmx swaps the grid in place
        expect(page.locator(".card")).to_have_count(1)
        expect(page.locator("#asset-count")).to_have_text("1 asset")

        page.click(".card")
        expect(page.locator("h1")).to_have_text("coffee")
        expect(page.locator("table.facts")).to_contain_text("Skyreach")

        page.click("text=Log out")
        expect(page).to_have_url(f"{base}/console/login")
        page.goto(f"{base}/console/assets")
        expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole%2Fassets")
        browser.close()
