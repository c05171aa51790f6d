"""The legal console in a real browser: Debian's Chromium driven by Playwright (never downloaded).

One test walks legal's day; others check roles, CSRF and the layout at laptop and phone widths.
Screenshots of every page go to test-artifacts/console/ (or $CLEARHOUSE_TEST_ARTIFACTS).
Skipped, loudly, where /usr/bin/chromium is missing (`make test` installs it as root).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from registry.access import create_api_key
from registry.db import session_scope
from registry.settings import Settings
from tests.photos import skimage_photo
from tests.registry.clearance import scenario

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("CLEARHOUSE_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="!!! Debian chromium is not installed: console tests SKIPPED !!!"),
    pytest.mark.slow,
]


@dataclass
class Live:
    base: str
    keys: dict[str, str]
    job_id: int
    asset_ids: dict[str, int]
    tmp: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(home=home, database_url=db_url, embedded_worker=True, allowed_roots=[allowed],
                    policies_dir=scenario.write_policies(tmp_path / "policies"))


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[Live]:
    """A real server on a free port with the clearance scenario: catalog, policies, and a
    finished job over the scenario dataset (2 items in review)."""
    app = create_app(settings)
    factory = app.state.session_factory
    asset_ids = scenario.import_catalog(factory, app.state.store)
    dataset = scenario.write_dataset(settings.allowed_roots[0] / "photos")
    keys = {}
    with session_scope(factory) as session:
        for role in ("legal", "ml", "partner"):
            keys[role] = create_api_key(session, name=f"{role}-user", role=role)[1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    ml = {"Authorization": f"Bearer {keys['ml']}"}
    res = httpx.post(f"{base}/v1/clearances", headers=ml, timeout=60, json={
        "dataset": str(dataset), "use": "ai_training", "licensee": scenario.LICENSEE})
    assert res.status_code == 202, res.text
    job_id = res.json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/v1/clearances/{job_id}", headers=ml).json()["status"] != "finished":
        assert time.monotonic() < deadline, "the clearance did not finish"
        time.sleep(0.2)
    yield Live(base, keys, job_id, asset_ids, tmp_path)
    server.should_exit = True
    thread.join(5)
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for the module (a launch takes about a second)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The browser for one test: each new_page() has its own context (its own cookies); every
    page the test opened is closed after it."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def _shots(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / "console" / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def _no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_legal_day_in_the_browser(live: Live, browser: Any,
                                  request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    shots = _shots(request)
    base = live.base
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text)
            if "Content Security Policy" in m.text else None)

    # Anonymous: sent to sign in.
    page.goto(f"{base}/console/clearances")
    expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole%2Fclearances")
    page.screenshot(path=str(shots / "01-sign-in.png"))
    page.get_by_label("API key").fill("ch_nothing_here")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown API key")

    # Sign in: back where we were going; the browser holds a session id, not the key.
    page.get_by_label("API key").fill(live.keys["legal"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/clearances")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert live.keys["legal"] not in cookies.values() and "clearhouse_session" in cookies

    # Home: what needs legal now.
    page.get_by_role("link", name="Home").click()
    expect(page.locator("#stat-review")).to_contain_text("2 items waiting for review")
    page.screenshot(path=str(shots / "02-home.png"), full_page=True)

    # Catalog, then an asset and a decision with its explanation tree.
    page.get_by_role("link", name="Catalog").click()
    expect(page.locator(".card")).to_have_count(3)
    page.get_by_label("Search titles").fill("chel")
    expect(page.locator(".card")).to_have_count(1)
    page.screenshot(path=str(shots / "03-catalog.png"), full_page=True)
    page.locator(".card").click()
    expect(page.locator("h1")).to_have_text("chelsea")
    expect(page.locator("#fingerprints")).to_contain_text("hashes")
    page.get_by_label("Licensee", exact=True).fill(scenario.LICENSEE)
    page.get_by_label("Use", exact=True).select_option("ai_training")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("[data-outcome]")).to_have_text("review")
    expect(page.locator("ul.tree")).to_contain_text("harbor-lumen-training")
    expect(page.locator("ul.tree")).to_contain_text("applied")
    page.screenshot(path=str(shots / "04-asset-decision.png"), full_page=True)

    # A finished clearance: chart, filter to review.
    page.get_by_role("link", name="Clearances").click()
    page.screenshot(path=str(shots / "05-clearances.png"), full_page=True)
    page.get_by_role("link", name=f"#{live.job_id}").click()
    expect(page.locator('[data-verdict-count="review"]')).to_have_text("2")
    expect(page.locator('[data-verdict-count="blocked"]')).to_have_text("2")
    page.get_by_label("Verdict", exact=True).select_option("review")
    expect(page.locator("#item-count")).to_have_text("2 items in review")
    expect(page.locator("tr[data-verdict]")).to_have_count(2)
    page.screenshot(path=str(shots / "06-clearance-review-filter.png"), full_page=True)
    page.locator("tr[data-verdict] a").first.click()
    expect(page.locator(".pair").first).to_be_visible()
    expect(page.locator(".pair img, .pair svg").first).to_be_visible()
    page.screenshot(path=str(shots / "07-matched-pair.png"), full_page=True)
    page.go_back()

    # Decide two items: one allowed, then one blocked; a missing comment is refused first.
    page.goto(f"{base}/console/clearances/{live.job_id}/review")
    expect(page.locator("#review-count")).to_have_text("2 items waiting for review.")
    page.screenshot(path=str(shots / "08-review-queue.png"), full_page=True)
    rows = page.locator("tr.review-row input[type=checkbox]")
    rows.nth(0).check()
    page.get_by_label("Comment (required: why)").fill("research model only: agreed by counsel")
    page.get_by_role("button", name="Allow chosen").click()
    expect(page.get_by_role("status").first).to_contain_text("Decided 1 item")
    expect(page.locator("#review-count")).to_have_text("1 item waiting for review.")
    page.locator("tr.review-row input[type=checkbox]").nth(0).check()
    page.get_by_label("Comment (required: why)").fill("mirrored copy: not licensed")
    page.get_by_role("button", name="Block chosen").click()
    expect(page.locator("#review-count")).to_have_text("0 items waiting for review.")

    # Issue and download the certificate.
    page.get_by_role("button", name="Issue the certificate").click()
    expect(page.locator("#certificate")).to_contain_text("Issued")
    expect(page.locator('[data-verdict-count="review"]')).to_have_text("0")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the certificate (DSSE JSON)").click()
    saved = live.tmp / "certificate.json"
    download.value.save_as(saved)
    assert '"payloadType": "application/vnd.in-toto+json"' in saved.read_text()
    page.screenshot(path=str(shots / "09-certified.png"), full_page=True)

    # Verify a signed file by upload.
    partner = {"Authorization": f"Bearer {live.keys['partner']}"}
    signed = httpx.post(f"{base}/v1/sign", headers=partner, timeout=120,
                        files=[("file", ("gen.jpg", skimage_photo("rocket.jpg").read_bytes()))],
                        data={"model": "lumen-2",
                              "ingredient": [str(live.asset_ids["astronaut.png"])]})
    assert signed.status_code == 200, signed.text
    signed_path = live.tmp / "signed-gen.jpg"
    signed_path.write_bytes(signed.content)
    page.get_by_role("link", name="Verify").click()
    page.get_by_label("Drop a file here, or choose one").set_input_files(str(signed_path))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verify-state")).to_have_text("valid")
    expect(page.locator("#verify-result")).to_contain_text("trusted")
    expect(page.locator("#verify-result")).to_contain_text("astronaut")
    expect(page.locator("#verify-result")).to_contain_text(scenario.HOLDER)
    page.screenshot(path=str(shots / "10-verify.png"), full_page=True)

    # Policies.
    page.get_by_role("link", name="Policies").click()
    expect(page.locator('tr[data-policy="harbor-lumen-training"]')).to_be_visible()
    page.screenshot(path=str(shots / "11-policies.png"), full_page=True)

    # Those actions in the audit log.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action", exact=True).select_option("clearance.review")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    expect(page.locator("#audit")).to_contain_text("research model only")
    expect(page.locator("#audit")).to_contain_text("legal-user")
    for action in ("clearance.certificate.issue", "provenance.verify", "policy.decide",
                   "console.login"):
        page.get_by_label("Action", exact=True).select_option(action)
        page.get_by_role("button", name="Filter").click()
        expect(page.locator(f'#audit tr[data-action="{action}"]').first).to_be_visible()
    page.screenshot(path=str(shots / "12-audit.png"), full_page=True)

    # Unknown console URLs are an HTML page.
    page.goto(f"{base}/console/no/such/page")
    expect(page.locator("h1")).to_have_text("Page not found")

    # Log out ends the session.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/console/login")
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    assert csp_errors == []


# The browser checks below do not depend on the backend (the TestClient tests of the same rules
# run on both): SQLite only, to keep the suite short.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_roles_csrf_and_origin_in_the_browser(live: Live, browser: Any,
                                              request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    shots = _shots(request)
    base = live.base
    # ml: reads its job, no review link, the review queue is refused.
    ml = browser.new_page()
    _sign_in(ml, base, live.keys["ml"])
    expect(ml.get_by_role("link", name="Review queue")).to_have_count(0)
    ml.goto(f"{base}/console/clearances/{live.job_id}")
    expect(ml.locator('[data-verdict-count="review"]')).to_have_text("2")
    expect(ml.get_by_role("link", name=re.compile("Review 2 items"))).to_have_count(0)
    ml.goto(f"{base}/console/clearances/{live.job_id}/review")
    expect(ml.locator("h1")).to_have_text("Not allowed")
    ml.screenshot(path=str(shots / "ml-refused.png"))
    # Even a hand-made POST with ml's own valid CSRF token is refused.
    token = ml.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    status = ml.evaluate(
        """async ([url, token]) => (await fetch(url, {method: 'POST', headers:
        {'X-CSRF-Token': token, 'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'items=1&decision=allowed&comment=x'})).status""",
        [f"{base}/console/clearances/{live.job_id}/review", token])
    assert status == 403

    # partner: only Verify.
    partner = browser.new_page()
    _sign_in(partner, base, live.keys["partner"])
    expect(partner).to_have_url(f"{base}/console/verify")
    links = partner.get_by_role("navigation", name="Console").get_by_role("link")
    expect(links).to_have_text(["Verify"])
    partner.goto(f"{base}/console/assets")
    expect(partner.locator("h1")).to_have_text("Not allowed")
    partner.screenshot(path=str(shots / "partner-verify-only.png"))

    # legal: a form posted without its CSRF token, or from another origin, changes nothing.
    legal = browser.new_page()
    _sign_in(legal, base, live.keys["legal"])
    legal.goto(f"{base}/console/clearances/{live.job_id}/review")
    first = legal.locator("tr.review-row").first.get_attribute("data-item")
    no_token = legal.evaluate(
        """async ([url, item]) => (await fetch(url, {method: 'POST', headers:
        {'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'items=' + item + '&decision=allowed&comment=forged'})).status""",
        [f"{base}/console/clearances/{live.job_id}/review", first])
    assert no_token == 403
    token = legal.evaluate(
        "JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    # Another origin: the browser's own Origin header names the other site.
    cross = legal.context.request.post(
        f"{base}/console/clearances/{live.job_id}/review",
        headers={"Origin": "https://evil.example", "X-CSRF-Token": token},
        form={"items": first, "decision": "allowed", "comment": "cross-site"})
    assert cross.status == 403
    legal.reload()
    expect(legal.locator("#review-count")).to_have_text("2 items waiting for review.")

    # Anonymous: sent to sign in.
    anonymous = browser.new_page()
    anonymous.goto(f"{base}/console/clearances/{live.job_id}/review")
    expect(anonymous).to_have_url(re.compile(r"/console/login\?next="))


@SQLITE_ONLY
def test_pages_fit_laptops_and_phones_without_horizontal_overflow(
    live: Live, browser: Any, request: pytest.FixtureRequest
) -> None:
    shots = _shots(request)
    paths = ["/console/", "/console/assets", f"/console/assets/{live.asset_ids['coffee.png']}",
             "/console/clearances", f"/console/clearances/{live.job_id}",
             f"/console/clearances/{live.job_id}/review", "/console/review",
             "/console/policies", "/console/verify", "/console/audit"]
    for width, height in ((1280, 800), (375, 740)):
        page = browser.new_page(viewport={"width": width, "height": height})
        _sign_in(page, live.base, live.keys["legal"])
        for path in paths:
            page.goto(live.base + path)
            assert page.locator("main h1").count() == 1, path
            assert _no_horizontal_overflow(page), f"{path} overflows at {width} px"
            name = re.sub(r"\W+", "_", path.strip("/")) or "home"
            page.screenshot(path=str(shots / f"{width}-{name}.png"), full_page=True)
        # Keyboard: the skip link is the first stop and lands on the content.
        page.goto(live.base + "/console/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.close()
