"""Console clearances on both backends: job list and page, filtered and searched items, the
matched pair, the review queue (one by one and in bulk, comment required, ml refused, CSRF), the
certificate issued from the page and downloaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.audit import AuditEvent
from registry.clearance import ClearanceItem
from registry.db import session_scope
from registry.settings import Settings
from tests.api.console_helpers import origin, sign_in
from tests.registry.clearance import scenario


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(home=home, database_url=db_url, embedded_worker=True, allowed_roots=[allowed],
                    policies_dir=scenario.write_policies(tmp_path / "policies"))


@pytest.fixture
def job_id(client: TestClient, settings: Settings, keys: dict[str, dict[str, str]]) -> int:
    scenario.import_catalog(client.app.state.session_factory, client.app.state.store)
    dataset = scenario.write_dataset(settings.allowed_roots[0] / "photos")
    res = client.post("/v1/clearances", headers=keys["ml"], json={
        "dataset": str(dataset), "use": "ai_training", "licensee": scenario.LICENSEE})
    assert res.status_code == 202, res.text
    return int(res.json()["id"])


def _plain(keys: dict[str, dict[str, str]], role: str) -> str:
    return keys[role]["Authorization"].removeprefix("Bearer ")


def _items(html: str) -> list[str]:
    return re.findall(r'<tr data-item="\d+" data-verdict="(\w+)"', html)


def _review_ids(client: TestClient, job_id: int) -> list[int]:
    with session_scope(client.app.state.session_factory) as session:
        return list(session.scalars(select(ClearanceItem.id).where(
            ClearanceItem.job_id == job_id, ClearanceItem.verdict == "review")))


def test_legal_reads_jobs_counts_and_filtered_items(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int
) -> None:
    sign_in(client, _plain(keys, "legal"))
    jobs = client.get("/console/clearances")
    assert f'data-job="{job_id}"' in jobs.text and "2 review" in jobs.text
    page = client.get(f"/console/clearances/{job_id}")
    assert page.status_code == 200
    counts = dict(re.findall(r'data-verdict-count="(\w+)">(\d+)<', page.text))
    assert counts == {"clear": "6", "blocked": "2", "review": "2", "error": "4"}
    # Unfiltered: what needs a person first.
    assert _items(page.text) == ["review"] * 2 + ["blocked"] * 2 + ["error"] * 4 + ["clear"] * 6
    review = client.get(f"/console/clearances/{job_id}?verdict=review",
                        headers={"HX-Request": "true", "HX-Target": "items"})
    assert "<html" not in review.text  # the fragment htmx swaps in
    assert _items(review.text) == ["review", "review"]
    found = client.get(f"/console/clearances/{job_id}?q=COFFEE")
    assert _items(found.text) == ["blocked", "blocked"]
    assert "Harbor Studio" in found.text  # matched asset shown with its title and rightsholder
    assert client.get(f"/console/clearances/{job_id}?verdict=bogus&q=%25").status_code == 200
    assert client.get(f"/console/clearances/{job_id}?page=x").status_code == 422


def test_the_matched_pair_shows_both_pictures_and_the_region(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int
) -> None:
    sign_in(client, _plain(keys, "legal"))
    with session_scope(client.app.state.session_factory) as session:
        item = session.scalar(select(ClearanceItem).where(
            ClearanceItem.item_key == "open/astronaut-crop.jpg"))
        assert item is not None
        item_id = item.id
    page = client.get(f"/console/clearances/{job_id}/items/{item_id}")
    assert page.status_code == 200
    assert 'class="region"' in page.text  # the matched region boxed on the item
    assert "/console/assets/" in page.text and "allowed" in page.text
    picture = client.get(f"/console/clearances/{job_id}/items/{item_id}/image")
    assert picture.headers["content-type"] == "image/jpeg"
    assert client.get(f"/console/clearances/{job_id}/items/999999").status_code == 404


def test_review_one_then_bulk_then_certificate_and_download(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int, settings: Settings
) -> None:
    csrf = sign_in(client, _plain(keys, "legal"))
    queue = client.get("/console/review")
    assert f'data-job="{job_id}"' in queue.text
    first, second = _review_ids(client, job_id)
    url = f"/console/clearances/{job_id}/review"
    # No comment: refused with the reason, nothing decided.
    refused = client.post(url, data={"csrf_token": csrf, "items": [str(first)],
                                     "decision": "allowed", "comment": " "},
                          headers=origin(client))
    assert refused.status_code == 422 and "comment" in refused.text
    assert len(_review_ids(client, job_id)) == 2
    # The certificate cannot be issued yet.
    early = client.post(f"/console/clearances/{job_id}/certificate", data={"csrf_token": csrf},
                        headers=origin(client))
    assert early.status_code == 409 and "awaiting legal review" in early.text
    one = client.post(url, data={"csrf_token": csrf, "items": [str(first)],
                                 "decision": "allowed", "comment": "research model, ok"},
                      headers=origin(client), follow_redirects=False)
    assert one.status_code == 303
    assert "1 item waiting" in client.get(url).text
    bulk = client.post(url, data={"csrf_token": csrf, "items": [str(second)],
                                  "decision": "blocked", "comment": "mirror copy: no"},
                       headers=origin(client))
    assert bulk.status_code == 200 and "Decided 1 item" in bulk.text
    assert "Issue the certificate" in bulk.text
    job_page = client.get(f"/console/clearances/{job_id}").text
    assert dict(re.findall(r'data-verdict-count="(\w+)">(\d+)<', job_page))["review"] == "0"
    issued = client.post(f"/console/clearances/{job_id}/certificate",
                         data={"csrf_token": csrf}, headers=origin(client))
    assert issued.status_code == 200 and "Download the certificate" in issued.text
    download = client.get(f"/console/clearances/{job_id}/certificate")
    assert "attachment" in download.headers["content-disposition"]
    envelope = json.loads(download.content)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    with session_scope(client.app.state.session_factory) as session:
        actions = [(e.actor, e.action) for e in session.scalars(select(AuditEvent))]
    assert actions.count(("test-legal", "clearance.review")) == 2
    assert any(a == "clearance.certificate.issue" for _, a in actions)


def test_bulk_decides_all_or_none(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int
) -> None:
    csrf = sign_in(client, _plain(keys, "legal"))
    ids = _review_ids(client, job_id)
    with session_scope(client.app.state.session_factory) as session:
        clear_id = session.scalar(select(ClearanceItem.id).where(
            ClearanceItem.job_id == job_id, ClearanceItem.verdict == "clear"))
    mixed = client.post(f"/console/clearances/{job_id}/review",
                        data={"csrf_token": csrf, "items": [str(i) for i in [*ids, clear_id]],
                              "decision": "blocked", "comment": "all of them"},
                        headers=origin(client))
    assert mixed.status_code == 409 and "not awaiting review" in mixed.text
    assert _review_ids(client, job_id) == ids  # nothing half-decided
    both = client.post(f"/console/clearances/{job_id}/review",
                       data={"csrf_token": csrf, "items": [str(i) for i in ids],
                             "decision": "blocked", "comment": "not for generative use"},
                       headers=origin(client))
    assert "Decided 2 items" in both.text and _review_ids(client, job_id) == []


def test_ml_cannot_decide_reviews_and_forged_forms_change_nothing(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int
) -> None:
    ids = _review_ids(client, job_id)
    ml_csrf = sign_in(client, _plain(keys, "ml"))
    assert client.get(f"/console/clearances/{job_id}").status_code == 200  # its own job
    assert client.get("/console/review").status_code == 403
    refused = client.post(f"/console/clearances/{job_id}/review",
                          data={"csrf_token": ml_csrf, "items": [str(ids[0])],
                                "decision": "allowed", "comment": "I am not legal"},
                          headers=origin(client))
    assert refused.status_code == 403
    legal = TestClient(client.app)
    csrf = sign_in(legal, _plain(keys, "legal"))
    forged = legal.post(f"/console/clearances/{job_id}/review",
                        data={"items": [str(ids[0])], "decision": "allowed", "comment": "x"},
                        headers=origin(legal))
    assert forged.status_code == 403
    cross = legal.post(f"/console/clearances/{job_id}/review",
                       data={"csrf_token": csrf, "items": [str(ids[0])], "decision": "allowed",
                             "comment": "x"}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert _review_ids(client, job_id) == ids


def test_running_jobs_poll_for_progress_until_finished(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    from registry.clearance import get_job, open_dataset, submit_job

    dataset = scenario.write_dataset(settings.allowed_roots[0] / "photos")
    with session_scope(client.app.state.session_factory) as session:
        pending = submit_job(session, dataset=open_dataset(dataset), use="ai_training",
                             licensee="Lumen AI", owner="someone").id
    sign_in(client, _plain(keys, "legal"))
    listing = client.get("/console/clearances").text
    assert 'hx-trigger="every 2s"' in listing and "<progress" in listing
    progress = client.get(f"/console/clearances/{pending}/progress",
                          headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in progress.text and "HX-Refresh" not in progress.headers
    with session_scope(client.app.state.session_factory) as session:
        job = get_job(session, pending)
        job.status, job.done_items = "finished", job.total_items or 0
    done = client.get(f"/console/clearances/{pending}/progress", headers={"HX-Request": "true"})
    assert "every 2s" not in done.text and done.headers["HX-Refresh"] == "true"
    assert "every 2s" not in client.get("/console/clearances").text


def test_search_covers_keys_and_optionally_captions(
    client: TestClient, keys: dict[str, dict[str, str]], job_id: int
) -> None:
    with session_scope(client.app.state.session_factory) as session:
        item = session.scalar(select(ClearanceItem).where(
            ClearanceItem.item_key == "other/horse.jpg"))
        assert item is not None
        item.caption = "A grey Horse in a FIELD"
    sign_in(client, _plain(keys, "legal"))
    url = f"/console/clearances/{job_id}"
    assert _items(client.get(f"{url}?q=field").text) == []  # keys only by default
    assert _items(client.get(f"{url}?q=field&in_text=1").text) == ["clear"]
    assert _items(client.get(f"{url}?q=HORSE").text) == ["clear"]
    # LIKE wildcards are literal: "_" finds motorcycle_left only, not every clear item.
    assert _items(client.get(f"{url}?q=_&verdict=clear").text) == ["clear"]
    assert len(_items(client.get(f"{url}?q=.jpg&verdict=blocked").text)) == 2
