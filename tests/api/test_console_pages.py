"""Console home, policies, asset decision panel, upload and audit log, on both backends."""

from __future__ import annotations

import datetime as dt
import html
import re
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from registry.access import create_api_key
from registry.catalog import ImportOptions, import_paths
from registry.db import session_scope
from registry.settings import Settings
from tests.api.console_helpers import origin, sign_in
from tests.art import CATALOG_PORTRAITS, portrait, require_art
from tests.photos import skimage_photo

SOON = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
POLICY = textwrap.dedent(f"""\
    id: harbor-lumen
    title: Harbor stills for Lumen AI
    licensor: Harbor Studio
    licensee: Lumen AI
    period: {{to: {SOON}}}
    grants:
      - use: ai_training
        permission: allowed
      - use: ai_generative_training
        permission: notAllowed
    """)


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "harbor.yaml").write_text(POLICY, encoding="utf-8")
    return Settings(home=home, database_url=db_url, policies_dir=policies)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _legal(client: TestClient) -> str:
    with session_scope(client.app.state.session_factory) as session:
        key = create_api_key(session, name="counsel", role="legal")[1]
    return sign_in(client, key)


def _import(client: TestClient, *names: str) -> list[int]:
    from registry.fingerprint import fingerprint_new_asset

    results = import_paths(client.app.state.session_factory, client.app.state.store,
                           [skimage_photo(n) for n in names or ("coffee.png",)],
                           ImportOptions(rightsholder="Harbor Studio", tags=["press-kit"]),
                           after_register=fingerprint_new_asset)
    return [r.asset_id for r in results if r.asset_id is not None]


def test_home_lists_expiring_licences(client: TestClient) -> None:
    _legal(client)
    home = _text(client.get("/console/").text)
    assert "1 licence expiring within 30 days" in home
    assert "harbor-lumen" in home and SOON in home
    assert "0 items waiting for review" in home


def test_policies_show_version_period_scope_and_expiry(client: TestClient) -> None:
    _legal(client)
    page = client.get("/console/policies")
    row = re.search(r'<tr data-policy="harbor-lumen" data-state="(\w+)" class="expiring"',
                    page.text)
    assert row and row.group(1) == "expiring"
    assert "harbor.yaml" in page.text and "all of the licensor's assets" in page.text


def test_policy_errors_are_shown_with_file_line_and_field(client: TestClient,
                                                         settings: Settings) -> None:
    _legal(client)
    client.get("/console/policies")  # the valid set is now in force
    (settings.policies_dir / "broken.yaml").write_text(textwrap.dedent("""\
        id: broken
        licensor: Harbor Studio
        licensee: Lumen AI
        grants:
          - use: ai_training
            permission: maybe
        """), encoding="utf-8")
    page = client.get("/console/policies")
    table = page.text[page.text.index('id="policy-problems"'):]
    assert "broken.yaml" in table and "<td>6</td>" in table
    assert "grants[0].permission" in table
    assert 'data-policy="harbor-lumen"' in page.text  # the set in force stays


def test_the_decision_panel_explains_like_policy_explain(client: TestClient) -> None:
    csrf = _legal(client)
    (asset_id,) = _import(client)
    page = client.get(f"/console/assets/{asset_id}")
    assert "harbor-lumen" in page.text and "hashes" in page.text
    assert 'id="weak-flag"' not in page.text
    url = f"/console/assets/{asset_id}/decision"
    allowed = client.post(url, data={"csrf_token": csrf, "licensee": "Lumen AI",
                                     "use": "ai_training"}, headers=origin(client))
    assert 'data-outcome="allowed"' in allowed.text
    assert "decided by <strong>harbor-lumen#grants[0]</strong>" in allowed.text
    denied = client.post(url, data={"csrf_token": csrf, "licensee": "Lumen AI",
                                    "use": "ai_generative_training"}, headers=origin(client))
    assert 'data-outcome="denied"' in denied.text
    later = client.post(url, data={"csrf_token": csrf, "licensee": "Lumen AI",
                                   "use": "ai_training", "on": "2099-01-01"},
                        headers=origin(client))
    assert 'data-outcome="denied"' in later.text and "expired" in later.text
    bad = client.post(url, data={"csrf_token": csrf, "licensee": "Lumen AI",
                                 "use": "sell_it", "on": "tomorrow"}, headers=origin(client))
    assert bad.status_code == 422 and "not a date" in bad.text


def test_legal_uploads_assets_and_the_catalog_filters_by_tag_and_rightsholder(
    client: TestClient,
) -> None:
    csrf = _legal(client)
    _import(client)
    upload = client.post(
        "/console/assets", headers=origin(client),
        data={"csrf_token": csrf, "rightsholder": "Harbor Studio", "tags": "stills"},
        files=[("files", ("chelsea.png", skimage_photo("chelsea.png").read_bytes())),
               ("files", ("notes.png", b"not a picture at all"))])
    assert upload.status_code == 200
    assert "chelsea</a> created" in upload.text and "notes.png: <span class=\"error\">" in \
        upload.text
    grid = client.get("/console/assets?tag=stills", headers={"HX-Request": "true"})
    assert "1 asset" in grid.text and "chelsea" in grid.text and " KB" in grid.text
    assert "2 assets" in client.get("/console/assets?rightsholder_id=1").text
    assert "0 assets" in client.get("/console/assets?rightsholder_id=99").text


def test_the_audit_log_filters_by_action_and_date(client: TestClient) -> None:
    _legal(client)
    page = client.get("/console/audit?action=console.login")
    assert 'data-action="console.login"' in page.text and "counsel" in page.text
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    assert "0 events" in _text(client.get(f"/console/audit?since={tomorrow}").text)
    assert client.get("/console/audit?since=someday").status_code == 422


def _weak_flag(page: str) -> str | None:
    """The text of the asset page's weak flag, or None when it has none."""
    found = re.search(r'<span class="error" id="weak-flag">([^<]*)</span>', page)
    return None if found is None else html.unescape(found.group(1))


def _import_pictures(client: TestClient, tmp_path: Path,
                     pictures: dict[str, Image.Image]) -> dict[str, int]:
    from registry.fingerprint import fingerprint_new_asset

    paths = []
    for name, picture in pictures.items():
        paths.append(tmp_path / name)
        picture.save(paths[-1])
    results = import_paths(client.app.state.session_factory, client.app.state.store, paths,
                           ImportOptions(rightsholder="Harbor Studio"),
                           after_register=fingerprint_new_asset)
    return {Path(r.path).name: r.asset_id for r in results if r.asset_id is not None}


def _reasons(client: TestClient) -> dict[int, str]:
    from registry.fingerprint import weak_reasons

    with session_scope(client.app.state.session_factory) as session:
        return weak_reasons(session)


def test_a_flat_picture_is_flagged_with_the_reason_the_cli_gives(
    client: TestClient, tmp_path: Path
) -> None:
    _legal(client)
    (photo,) = _import(client)
    ids = _import_pictures(client, tmp_path,
                           {"sky.png": Image.new("RGB", (400, 300), (120, 160, 220))})
    reason = _reasons(client)[ids["sky.png"]]
    assert reason.startswith("flat: best hash quality")
    flag = _weak_flag(client.get(f"/console/assets/{ids['sky.png']}").text)
    assert flag == f"weakly protectable: {reason}"
    # A well-protected asset in the same catalog carries no flag.
    assert _weak_flag(client.get(f"/console/assets/{photo}").text) is None


def test_a_bare_silhouette_is_flagged_as_bare_art(client: TestClient, tmp_path: Path) -> None:
    require_art()
    _legal(client)
    art = Image.open(portrait(CATALOG_PORTRAITS[1])).convert("RGBA")
    shape = Image.new("RGBA", art.size, (40, 30, 60, 255))
    shape.putalpha(art.getchannel("A"))
    ids = _import_pictures(client, tmp_path, {"silhouette.png": shape, "portrait.png": art})
    reason = _reasons(client)[ids["silhouette.png"]]
    assert reason.startswith("bare art: ")
    flag = _weak_flag(client.get(f"/console/assets/{ids['silhouette.png']}").text)
    assert flag == f"weakly protectable: {reason}"
    assert _weak_flag(client.get(f"/console/assets/{ids['portrait.png']}").text) is None
