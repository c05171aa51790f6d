"""`clearhouse audit verify|list`, CLI actions in the audit log, and `clearances show` /
`certificate verify` flagging items changed after a certificate (issue 13, finding 9)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from registry.db import make_engine
from tests.cli import test_clearance
from tests.cli.test_clearance import _clear, run

world = test_clearance.world  # the catalog, policies and dataset fixture of the clearance CLI tests


def test_cli_actions_are_audited_and_the_log_verifies(
    clearhouse_env: dict[str, str], monkeypatch: object
) -> None:
    assert run("rightsholders", "create", "Harbor").exit_code == 0
    made = run("keys", "create", "--role", "ml", "--name", "bot", "--json")
    assert made.exit_code == 0, made.output
    listed = json.loads(run("audit", "list", "--json").stdout)["events"]
    assert [e["action"] for e in listed] == ["api_key.create", "rightsholder.create"]
    assert {e["actor_role"] for e in listed} == {"cli"}
    ok = run("audit", "verify", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True

    engine = make_engine(clearhouse_env["CLEARHOUSE_DATABASE_URL"])
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'someone' WHERE seq = 1"))
    engine.dispose()
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "entry 1" in broken.stderr and "NOT intact" in broken.stderr


def test_items_flipped_after_the_certificate_are_flagged(
    world: Path, tmp_path: Path, clearhouse_env: dict[str, str]
) -> None:
    report = json.loads(_clear(world, "--json").stdout)
    job = str(report["job"]["id"])
    for item in json.loads(run("review", "list", job, "--json").stdout)["items"]:
        run("review", "decide", job, str(item["item"]), "--decision", "blocked",
            "--comment", "no", "--as", "legal-anna")
    cert = tmp_path / "cert.json"
    assert run("certificate", "issue", job, "--out", str(cert)).exit_code == 0
    shown = json.loads(run("clearances", "show", job, "--json").stdout)
    assert shown["certificate_drift"] == []
    assert json.loads(run("certificate", "verify", str(cert), "--json").stdout)["drift"] == []

    engine = make_engine(clearhouse_env["CLEARHOUSE_DATABASE_URL"])
    with engine.begin() as conn:  # someone with database access flips blocked items to clear
        conn.execute(text("UPDATE clearance_items SET verdict = 'clear' "
                          "WHERE job_id = :job AND verdict = 'blocked'"), {"job": int(job)})
    engine.dispose()
    shown = run("clearances", "show", job, "--json")
    drift = json.loads(shown.stdout)["certificate_drift"]
    assert any("blocked" in d and "-> 0" in d for d in drift), drift
    human = run("clearances", "show", job)
    assert "changed after the certificate" in human.stderr
    verified = run("certificate", "verify", str(cert))
    assert verified.exit_code == 0  # the certificate itself is still genuine...
    assert "changed after the certificate" in verified.stderr  # ...but the registry moved on
