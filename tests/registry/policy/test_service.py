"""Policy versions in the database (SQLite and PostgreSQL), AssetFacts from catalog rows, ODRL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import registry.policy
from registry.catalog import BlobStore
from registry.policy import (
    AssetFacts,
    Outcome,
    Use,
    find_policy_version,
    list_policy_versions,
    load_policies,
    record_policy_versions,
    to_odrl,
)
from tests.factories import make_asset, make_franchise, make_rightsholder
from tests.registry.policy.sample import STUDIO_A, write_sample

REPO = Path(__file__).resolve().parents[3]


def test_front_door_exports_the_interface_other_areas_use() -> None:
    assert {"Use", "Permission", "Outcome", "AssetFacts", "PolicySet", "Decision",
            "load_policies", "record_policy_versions"} <= set(registry.policy.__all__)
    for name in registry.policy.__all__:
        assert hasattr(registry.policy, name)


def test_loaded_versions_are_recorded_once_per_file_content(session: Session,
                                                            tmp_path: Path) -> None:
    directory = write_sample(tmp_path / "p")
    first = load_policies(directory)
    rows = record_policy_versions(session, first)
    assert sorted(r.file for r in rows) == ["studio-a.yaml", "studio-b.yml"]
    again = record_policy_versions(session, load_policies(directory))
    assert {r.id for r in again} == {r.id for r in rows}

    (directory / "studio-a.yaml").write_text(STUDIO_A + "# amended\n", encoding="utf-8")
    changed = load_policies(directory)
    record_policy_versions(session, changed)
    history = list_policy_versions(session, file="studio-a.yaml")
    assert len(history) == 2
    new_sha = {v.file: v.sha256 for v in changed.versions}["studio-a.yaml"]
    row = find_policy_version(session, new_sha)
    assert row is not None and row.content.endswith("# amended\n")
    assert row.loaded_at.tzinfo is not None
    assert "a-partner" in row.policy_ids


def test_a_decision_names_a_recorded_policy_version(session: Session, tmp_path: Path) -> None:
    policy_set = load_policies(write_sample(tmp_path / "p"))
    record_policy_versions(session, policy_set)
    asset = AssetFacts(1, "0" * 64, "Studio A", "Alpha", ())
    d = policy_set.decide(asset, licensee="Partner", use=Use.ai_training,
                          on=dt.date(2026, 5, 1))
    assert d.decided_by_version is not None
    row = find_policy_version(session, d.decided_by_version.sha256)
    assert row is not None and row.file == "studio-a.yaml"


def test_asset_facts_come_from_catalog_rows(session: Session, store: BlobStore) -> None:
    holder = make_rightsholder(session, "Meridian Pictures")
    franchise = make_franchise(session, holder, "Harbor Lights")
    asset = make_asset(session, store, photo="coffee.png", holder=holder, franchise=franchise,
                       tags=("Press-Kit",))
    facts = AssetFacts.from_asset(asset)
    assert (facts.asset_id, facts.sha256, facts.rightsholder, facts.franchise) == (
        asset.id, asset.sha256, "Meridian Pictures", "Harbor Lights")
    assert facts.tags == ("press-kit",) and facts.width and facts.height
    shipped = load_policies(REPO / "policies")
    d = shipped.decide(facts, licensee="Lumen AI", use="ai_generative_training",
                       on=dt.date(2026, 11, 25))
    assert d.outcome is Outcome.allowed and d.asset_id == asset.id


def test_odrl_export_maps_permissions_prohibitions_and_constraints() -> None:
    shipped = load_policies(REPO / "policies")
    lumen = to_odrl(shipped.get("meridian-lumen-harbor-lights"))
    assert lumen["@type"] == "Agreement" and lumen["conflict"] == "prohibit"
    assert "http://www.w3.org/ns/odrl.jsonld" in lumen["@context"]
    assert [p["action"]["refinement"][0]["rightOperand"] for p in lumen["permission"]] == [
        "cawg.ai_training", "cawg.ai_generative_training"]
    assert lumen["prohibition"][0]["action"]["refinement"][0]["rightOperand"] == (
        "cawg.ai_generative_training")
    rule = lumen["permission"][0]
    assert rule["assignee"]["dc:title"] == "Lumen AI"
    assert {"leftOperand": "dateTime", "operator": "lteq",
            "rightOperand": {"@value": "2027-06-30", "@type": "xsd:date"}} in rule["constraint"]

    constrained = to_odrl(shipped.get("meridian-internal-inference"))
    small = constrained["permission"][0]
    assert {"action": "attribute"} in small["duty"]
    assert any(c["leftOperand"] == "resolution" and c["rightOperand"] == 1024
               for c in small["constraint"])
    words_only = constrained["permission"][1]
    assert {"action": "obtainConsent"} in words_only["duty"]

    anyone = to_odrl(shipped.get("northwind-no-generative"))
    assert anyone["@type"] == "Offer" and "assignee" not in anyone["prohibition"][0]


def test_two_processes_recording_the_same_files_at_once_both_succeed(
        session_factory: sessionmaker[Session], db_url: str, tmp_path: Path) -> None:
    """Two workers starting jobs at the same moment both record the policy files: the one that
    loses the unique (file, sha256) race reads the other's rows (it failed its job before)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the race needs concurrent writers")
    policies = load_policies(write_sample(tmp_path / "p"))
    first = session_factory()
    mine = record_policy_versions(first, policies)  # inserted, not committed yet
    result: dict[str, list[int]] = {}
    errors: list[Exception] = []

    def other() -> None:
        with session_factory() as second:
            try:  # blocks on the unique index until `first` commits, then loses the race
                result["rows"] = [r.id for r in record_policy_versions(second, policies)]
                second.commit()
            except Exception as exc:  # the test reports what went wrong
                errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(1.0)  # the other insert is now waiting on the unique index
    first.commit()
    thread.join(timeout=30)
    first.close()
    assert not errors, errors
    assert sorted(result["rows"]) == sorted(r.id for r in mine)
    with session_factory() as check:
        assert len(list_policy_versions(check)) == len(mine)
