"""`clearhouse doctor`, private files, neutralised CSV cells and dropped uploads (issue 13,
finding 10)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from registry.clearance.reports import report_csv
from tests.photos import photo_paths

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_doctor_finds_and_removes_orphans_and_reports_rows_without_blobs(
    clearhouse_env: dict[str, str], tmp_path: Path
) -> None:
    photos = photo_paths()[:3]
    imported = run("assets", "import", *map(str, photos), "--rightsholder", "Harbor", "--json")
    assert imported.exit_code == 0, imported.output
    assert run("doctor", "--json").exit_code == 0
    home = Path(clearhouse_env["CLEARHOUSE_HOME"])
    blobs = sorted(p for p in (home / "blobs").rglob("*") if p.is_file())
    assert len(blobs) == 3 and all(_mode(b) == 0o600 for b in blobs)
    assert _mode(home) == 0o700
    if clearhouse_env["CLEARHOUSE_DATABASE_URL"].startswith("sqlite"):
        assert _mode(Path(clearhouse_env["CLEARHOUSE_DATABASE_URL"][10:])) == 0o600
    # What a kill during uploads leaves: a blob no row names, a half-written temporary file.
    orphan = home / "blobs" / "ab" / "cd" / ("abcd" + "0" * 60)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan")
    partial = blobs[0].parent / f".{blobs[0].name}.x1y2"
    partial.write_bytes(b"half")
    old = os.path.getmtime(blobs[0]) - 3600
    for path in (orphan, partial):
        os.utime(path, (old, old))
    blobs[1].unlink()  # and a row whose blob is gone
    found = run("doctor", "--json")
    assert found.exit_code == 1
    data = json.loads(found.stdout)
    assert data["orphans"] == [str(orphan)] and data["partial_writes"] == [str(partial)]
    assert [m["sha256"] for m in data["missing_blobs"]] == [blobs[1].name]
    fixed = json.loads(run("doctor", "--fix", "--json").stdout)
    assert sorted(fixed["removed"]) == sorted([str(orphan), str(partial)])
    assert not orphan.exists() and not partial.exists()
    after = json.loads(run("doctor", "--json").stdout)
    assert after["orphans"] == [] and len(after["missing_blobs"]) == 1


def test_a_young_orphan_is_kept_by_the_grace_period(
    clearhouse_env: dict[str, str]
) -> None:
    home = Path(clearhouse_env["CLEARHOUSE_HOME"])
    assert run("doctor").exit_code == 0
    young = home / "blobs" / "ff" / "ee" / ("ffee" + "1" * 60)
    young.parent.mkdir(parents=True)
    young.write_bytes(b"maybe an upload still committing")
    kept = json.loads(run("doctor", "--fix", "--json").stdout)
    assert kept["removed"] == [] and young.exists()


def test_csv_cells_that_would_run_as_formulas_are_neutralised() -> None:
    items = [{"path": name, "key": name, "id": None, "sha256": None, "verdict": "error",
              "machine_verdict": "error", "error": "+1 bad", "matches": [], "signals": [],
              "review": None}
             for name in ("=HYPERLINK(\"http://x\")", "@SUM(A1)", "-2+3", "plain.jpg")]
    text = report_csv({"items": items})
    rows = list(__import__("csv").DictReader(io.StringIO(text)))
    assert [r["path"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "'-2+3",
                                         "plain.jpg"]
    assert {r["error"] for r in rows} == {"'+1 bad"}
