"""`clearhouse policy ...` on both backends: check, explain, load, list, export, schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from registry.catalog import BlobStore, list_licences
from registry.db import make_engine, make_session_factory, session_scope
from registry.policy import list_policy_versions
from registry.settings import get_settings
from tests.factories import make_asset, make_franchise, make_rightsholder

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

BROKEN = (
    "id: broken\nlicensor: Meridian Pictures\nlicensee: Lumen AI\nperiod:\n"
    "  from: 2026-01-01\n  to: 2025-01-01\ngrants:\n  - use: ai_training\n"
    "    permission: allowed\n    colour: blue\n"
)


def run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def policies(clearhouse_env: dict[str, str], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    monkeypatch.setenv("CLEARHOUSE_POLICIES_DIR", str(target))
    get_settings.cache_clear()
    return target


@pytest.fixture
def factory(clearhouse_env: dict[str, str]):  # type: ignore[no-untyped-def]
    engine = make_engine(clearhouse_env["CLEARHOUSE_DATABASE_URL"])
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def press_still(factory, clearhouse_env: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with session_scope(factory) as session:
        holder = make_rightsholder(session, "Meridian Pictures")
        harbor = make_franchise(session, holder, "Harbor Lights")
        store = BlobStore(Path(clearhouse_env["CLEARHOUSE_HOME"]) / "blobs")
        return make_asset(session, store, photo="chelsea.png", holder=holder,
                          franchise=harbor, tags=("press-kit",)).id


def test_check_passes_on_the_shipped_policies(policies: Path) -> None:
    r = run("policy", "check")
    assert r.exit_code == 0 and "all valid" in r.output  # type: ignore[attr-defined]


def test_check_reports_each_error_with_file_line_and_field(policies: Path) -> None:
    (policies / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    r = run("policy", "check", str(policies), "--json")
    assert r.exit_code == 1  # type: ignore[attr-defined]
    errors = json.loads(r.stdout)["errors"]  # type: ignore[attr-defined]
    assert [(e["file"], e["line"], e["field"]) for e in errors] == [
        ("broken.yaml", 6, "period.to"), ("broken.yaml", 10, "grants[0].colour")]
    plain = run("policy", "check", str(policies))
    assert plain.exit_code == 1  # type: ignore[attr-defined]
    assert "broken.yaml:6: period.to: 'to' (2025-01-01) is before 'from'" in (
        plain.stderr)  # type: ignore[attr-defined]


def test_explain_prints_the_decision_as_json_and_as_a_tree(policies: Path,
                                                          press_still: int) -> None:
    args = ["policy", "explain", "--asset", str(press_still), "--licensee", "Lumen AI",
            "--use", "ai_generative_training", "--on", "2026-11-25"]
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    data = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert (data["outcome"], data["rule"], data["decided_by"]) == (
        "allowed", "more_specific_scope", "meridian-lumen-harbor-lights#grants[2]")
    assert data["decided_by_version"]["file"] == "meridian-lumen-harbor-lights.yaml"
    tree = run(*args)
    assert tree.exit_code == 0  # type: ignore[attr-defined]
    text = " ".join(tree.stdout.split())  # type: ignore[attr-defined]
    for words in ("allowed", "decided by", "overridden by", "meridian-lumen-2024-pilot"):
        assert words in text
    expired = run("policy", "explain", "--asset", str(press_still), "--licensee", "Lumen AI",
                  "--use", "data_mining", "--on", "2026-11-25", "--json")
    data = json.loads(expired.stdout)  # type: ignore[attr-defined]
    assert data["outcome"] == "denied" and data["rule"] == "rights_reserved"
    assert any("expired on 2025-06-30" in c["reason"] for c in data["explanation"])


def test_explain_errors_are_one_line(policies: Path, press_still: int) -> None:
    base = ["policy", "explain", "--licensee", "Lumen AI", "--use", "ai_training"]
    bad_date = run(*base, "--asset", str(press_still), "--on", "tomorrow")
    assert bad_date.exit_code == 1  # type: ignore[attr-defined]
    assert bad_date.stderr.strip() == (  # type: ignore[attr-defined]
        "error: --on 'tomorrow' is not a date (YYYY-MM-DD)")
    missing = run(*base, "--asset", "424242")
    assert missing.exit_code == 1  # type: ignore[attr-defined]
    assert missing.stderr.startswith("error: asset")  # type: ignore[attr-defined]
    bad_use = run("policy", "explain", "--licensee", "x", "--use", "ai_dreaming", "--asset", "1")
    assert bad_use.exit_code == 2  # type: ignore[attr-defined]


def test_load_records_versions_and_licences_and_refuses_a_broken_directory(
    policies: Path, press_still: int, factory  # type: ignore[no-untyped-def]
) -> None:
    r = run("policy", "load", "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    data = json.loads(r.stdout)  # type: ignore[attr-defined]
    # Meridian Pictures is in the catalog, Northwind Games is not (yet)
    assert set(data["licences_created"]) == {"meridian-lumen-harbor-lights",
                                             "meridian-internal-inference",
                                             "meridian-lumen-2024-pilot"}
    with factory() as session:
        files = {v.file for v in list_policy_versions(session)}
        licences = {lic.name: lic for lic in list_licences(session)}
    assert "northwind-games.yaml" in files
    assert licences["meridian-lumen-harbor-lights"].licensee == "Lumen AI"
    again = json.loads(run("policy", "reload", "--json").stdout)  # type: ignore[attr-defined]
    assert again["licences_created"] == []

    (policies / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    failed = run("policy", "load")
    assert failed.exit_code == 1  # type: ignore[attr-defined]
    assert "broken.yaml:6: period.to" in failed.stderr  # type: ignore[attr-defined]
    with factory() as session:
        assert {v.file for v in list_policy_versions(session)} == files


def test_list_export_and_schema(policies: Path, tmp_path: Path) -> None:
    listed = json.loads(run("policy", "list", "--json").stdout)  # type: ignore[attr-defined]
    assert len(listed["policies"]) == 5 and len(listed["versions"]) == 4
    odrl = json.loads(run("policy", "export", "northwind-internal-ml", "--format", "odrl")
                      .stdout)  # type: ignore[attr-defined]
    assert odrl["uid"] == "urn:com.clearhouse:policy:northwind-internal-ml"
    out = tmp_path / "all.jsonld"
    assert run("policy", "export", "--out", str(out)).exit_code == 0  # type: ignore[attr-defined]
    assert len(json.loads(out.read_text())) == 5
    bad = run("policy", "export", "--format", "xml")
    assert bad.exit_code == 1  # type: ignore[attr-defined]
    schema = json.loads(run("policy", "schema").stdout)  # type: ignore[attr-defined]
    assert schema["title"] == "Clearhouse policy file"
