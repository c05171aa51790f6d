"""`clearhouse clear --allowed-root`, an HF imagefolder cleared with exit 0, `clearances export`,
`certificate verify` against the export and the full dataset, and `summary`."""

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
from tests.photos import skimage_photo
from tests.registry.clearance import scenario

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def world(clearhouse_env: dict[str, str], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:
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


def test_an_imagefolder_with_metadata_clears_with_exit_0_and_a_manifest_uses_allowed_roots(
    world: Path, tmp_path: Path
) -> None:
    hf = tmp_path / "hf" / "train"
    hf.mkdir(parents=True)
    for name in scenario.UNRELATED:
        shutil.copy(skimage_photo(name), hf / name)
    (hf / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": n, "text": f"a photo of {n}"}) + "\n" for n in scenario.UNRELATED))
    result = run("clear", str(tmp_path / "hf"), "--use", "ai_training", "--licensee",
                 scenario.LICENSEE, "--json")
    assert result.exit_code == 0, result.stdout
    items = json.loads(result.stdout)["items"]
    assert {i["key"] for i in items} == {f"train/{n}" for n in scenario.UNRELATED}
    assert {i["caption"] for i in items} == {f"a photo of {n}" for n in scenario.UNRELATED}

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "m.csv").write_text("path\n" + "".join(
        f"{world / 'other' / Path(n).stem}.jpg\n" for n in scenario.UNRELATED))
    refused = run("clear", str(lists / "m.csv"), "--use", "ai_training", "--licensee", "x")
    assert refused.exit_code == 3  # outside the manifest's folder: error items
    allowed = run("clear", str(lists / "m.csv"), "--use", "ai_training", "--licensee", "x",
                  "--allowed-root", str(world / "other"))
    assert allowed.exit_code == 0, allowed.stdout


@pytest.mark.slow
def test_export_certificate_verify_and_summary_from_the_command_line(
    world: Path, tmp_path: Path
) -> None:
    assert run("clear", str(world), "--use", "ai_training", "--licensee",
               scenario.LICENSEE).exit_code == 1
    job = json.loads(run("clearances", "list", "--json").stdout)["jobs"][0]["id"]
    for item in ("limited/chelsea-small.jpg", "limited/chelsea-mirror.jpg"):
        assert run("review", "decide", str(job), item, "--decision", "blocked", "--comment",
                   "no", "--as", "legal").exit_code == 0
    out = tmp_path / "cleared"
    exported = run("clearances", "export", str(job), "--format", "webdataset", "--out",
                   str(out), "--json")
    assert exported.exit_code == 0, exported.stdout
    data = json.loads(exported.stdout)
    assert data["items"] == 6 and data["left_out"] == {"blocked": 4, "error": 4}
    again = run("clearances", "export", str(job), "--format", "hf", "--out", str(out))
    assert again.exit_code == 1 and "already exists" in again.stderr
    cert = tmp_path / "cert.json"
    assert run("certificate", "issue", str(job), "--out", str(cert)).exit_code == 0
    ok = run("certificate", "verify", str(cert), "--dataset", str(out))
    assert ok.exit_code == 0, ok.stderr
    full = run("certificate", "verify", str(cert), "--dataset", str(world), "--json")
    assert full.exit_code == 1
    check = json.loads(full.stdout)
    assert {d["key"] for d in check["differences"]} == {
        k for k, v in scenario.EXPECTED.items() if v != "clear"} | {"limited/chelsea-small.jpg"}

    found = run("clearances", "verdict", str(job), "closed/coffee-small.jpg", "--json")
    assert json.loads(found.stdout)["items"][0]["verdict"] == "blocked"
    missing = run("clearances", "verdict", str(job), "no-such-item")
    assert missing.exit_code == 1 and "no item of clearance job" in missing.stderr

    md = run("summary", str(job), "--format", "md")
    assert md.exit_code == 0 and "## 3. Data processing aspects" in md.stdout
    summary = json.loads(run("summary", str(job)).stdout)
    assert summary["trainingItems"] == 6
