"""`clearhouse clear`, `review`, `certificate issue|verify` on both backends: exit codes, reports in
three formats, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from registry.catalog import BlobStore
from registry.db import make_engine, make_session_factory
from registry.settings import get_settings
from tests.registry.clearance import scenario

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def world(clearhouse_env: dict[str, str], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:
    """Catalog and policies in place; returns the scenario dataset folder."""
    monkeypatch.setenv("CLEARHOUSE_POLICIES_DIR",
                       str(scenario.write_policies(tmp_path / "policies")))
    get_settings.cache_clear()
    engine = make_engine(clearhouse_env["CLEARHOUSE_DATABASE_URL"])
    try:
        scenario.import_catalog(make_session_factory(engine),
                                BlobStore(Path(clearhouse_env["CLEARHOUSE_HOME"]) / "blobs"))
    finally:
        engine.dispose()
    return scenario.write_dataset(tmp_path / "dataset")


def _clear(dataset: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run("clear", str(dataset), "--use", "ai_training", "--licensee", scenario.LICENSEE,
               *extra)


def test_the_report_schema_is_published() -> None:
    result = run("clear", "--schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["required"] == ["job", "dataset", "summary", "items"]


def test_exit_codes_say_clear_blocked_or_review_and_reports_come_in_three_formats(
    world: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    result = _clear(world, "--report", str(out / "r.html"), "--format", "html")
    assert result.exit_code == 1  # blocked items
    assert "blocked" in result.stdout and "coffee-small.jpg" in result.stdout
    html = (out / "r.html").read_text()
    assert html.startswith("<!doctype html>") and "data:image/jpeg;base64," in html
    job = json.loads(run("clearances", "list", "--json").stdout)["jobs"][0]["id"]
    run("clearances", "report", str(job), "--format", "csv", "--out", str(out / "r.csv"))
    assert (out / "r.csv").read_text().startswith("path,key,id,sha256,verdict")
    report = json.loads(run("clearances", "report", str(job)).stdout)
    assert {i["key"]: i["verdict"] for i in report["items"]} == scenario.EXPECTED
    shown = json.loads(run("clearances", "show", str(job), "--json").stdout)
    assert shown["status"] == "finished"

    only_clear = tmp_path / "only-clear"
    shutil.copytree(world / "other", only_clear)
    assert _clear(only_clear).exit_code == 0
    only_review = tmp_path / "only-review"
    shutil.copytree(world / "limited", only_review)
    assert _clear(only_review, "--json").exit_code == 2
    only_errors = tmp_path / "only-errors"
    shutil.copytree(world / "bad", only_errors)
    assert _clear(only_errors).exit_code == 3


def test_review_then_certificate_issue_and_verify(world: Path, tmp_path: Path) -> None:
    report = json.loads(_clear(world, "--json").stdout)
    job = str(report["job"]["id"])
    cert = tmp_path / "clearance.dsse.json"
    early = run("certificate", "issue", job, "--out", str(cert))
    assert early.exit_code == 1 and "awaiting legal review" in early.stderr

    pending = json.loads(run("review", "list", job, "--json").stdout)["items"]
    assert {i["key"] for i in pending} == {"limited/chelsea-small.jpg",
                                           "limited/chelsea-mirror.jpg"}
    for item, decision in zip(pending, ("allowed", "blocked"), strict=True):
        done = run("review", "decide", job, str(item["item"]), "--decision", decision,
                   "--comment", f"legal says {decision}", "--as", "legal-anna", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["review"]["by"] == "legal-anna"
    assert json.loads(run("review", "list", job, "--json").stdout)["items"] == []
    bad = run("review", "decide", job, "other/horse.jpg", "--decision", "allowed",
              "--comment", "x")
    assert bad.exit_code == 1 and "not awaiting review" in bad.stderr

    issued = run("certificate", "issue", job, "--out", str(cert))
    assert issued.exit_code == 0, issued.output
    # The certificate covers the cleared subset, as `clearances export` writes it.
    subset = tmp_path / "subset.jsonl"
    assert run("clearances", "export", job, "--format", "manifest", "--out",
               str(subset)).exit_code == 0
    ok = run("certificate", "verify", str(cert), "--dataset", str(subset), "--allowed-root",
             str(world), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["counts"] == {"clear": 7, "blocked": 3, "review": 0, "error": 4}

    (world / "other" / "horse.jpg").unlink()
    changed = run("certificate", "verify", str(cert), "--dataset", str(subset),
                  "--allowed-root", str(world))
    assert changed.exit_code == 1 and "dataset digest mismatch" in changed.stderr
    assert "1 cleared item(s) missing from the dataset" in changed.stderr
    envelope = json.loads(cert.read_text())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    cert.write_text(json.dumps(envelope))
    tampered = run("certificate", "verify", str(cert))
    assert tampered.exit_code == 1 and "invalid certificate" in tampered.stderr


def test_bad_command_lines_fail_with_one_line(world: Path, tmp_path: Path) -> None:
    missing = _clear(tmp_path / "nope")
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0
    bad_use = run("clear", str(world), "--use", "painting", "--licensee", "x")
    assert bad_use.exit_code == 1 and "use 'painting' is not one of" in bad_use.stderr
    unknown = run("clear", "--resume", "999")
    assert unknown.exit_code == 1 and "not found" in unknown.stderr
    no_args = run("clear", str(world))
    assert no_args.exit_code == 1 and "--use and --licensee are required" in no_args.stderr


def test_a_restarted_worker_resumes_every_unfinished_job(world: Path,
                                                          clearhouse_env: dict[str, str]) -> None:
    from registry import clearance
    from registry.db import session_scope

    engine = make_engine(clearhouse_env["CLEARHOUSE_DATABASE_URL"])
    try:
        with session_scope(make_session_factory(engine)) as session:
            job = clearance.submit_job(session, dataset=clearance.open_dataset(world / "closed"),
                                       use="ai_training", licensee=scenario.LICENSEE, owner="api")
            job_id = job.id
    finally:
        engine.dispose()
    result = run("clearances", "resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resumed"] == [
        {"job": job_id, "summary": {"clear": 0, "blocked": 2, "review": 0, "error": 0,
                                    "total": 2}}]
    assert json.loads(run("clearances", "resume", "--json").stdout)["resumed"] == []
