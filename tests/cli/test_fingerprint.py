"""`clearhouse match` and `clearhouse fingerprint ...`, on both backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from api.cli import app
from tests.factories import write_bad_file
from tests.photos import skimage_photo
from tests.registry.fingerprint.transforms import letterbox, rotate_5

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def imported(clearhouse_env: dict[str, str], tmp_path: Path) -> dict[str, int]:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("astronaut.png", "coffee.png", "rocket.jpg"):
        shutil.copy(skimage_photo(name), drop / name)
    res = run("assets", "import", str(drop), "--rightsholder", "Northwind Games", "--json")
    assert res.exit_code == 0, res.output
    return {Path(r["path"]).name: r["asset_id"] for r in json.loads(res.stdout)["imported"]}


def test_match_prints_each_file_with_its_matches_or_none(
    imported: dict[str, int], tmp_path: Path
) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    letterbox(Image.open(skimage_photo("coffee.png")).convert("RGB")).save(queries / "a.png")
    rotate_5(Image.open(skimage_photo("rocket.jpg")).convert("RGB")).save(queries / "b.jpg")
    shutil.copy(skimage_photo("chelsea.png"), queries / "c.png")
    res = run("match", str(queries), "--json")
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    by_name = {Path(r["path"]).name: r for r in body["results"]}
    assert list(by_name) == ["a.png", "b.jpg", "c.png"]
    a, b, c = by_name["a.png"], by_name["b.jpg"], by_name["c.png"]
    assert a["error"] is None and a["matches"][0]["asset_id"] == imported["coffee.png"]
    assert set(a["matches"][0]) >= {"asset_id", "asset_sha256", "signal", "distance",
                                    "confidence", "region", "time_s", "transform"}
    assert a["matches"][0]["transform"] == "padding"
    assert b["matches"][0]["asset_id"] == imported["rocket.jpg"]
    assert b["matches"][0]["signal"] in ("orb", "sift")  # local features, geometrically verified
    assert b["matches"][0]["transform"].startswith("geometric rot=5 ")
    assert c["matches"] == [] and c["error"] is None
    assert body["summary"] == {"files": 3, "matched": 2, "errors": 0}

    table = run("match", str(queries / "a.png"), str(queries / "c.png"))
    assert table.exit_code == 0
    assert "no match" in table.stdout and "padding" in table.stdout


def test_match_reports_bad_files_and_exits_non_zero(
    imported: dict[str, int], tmp_path: Path
) -> None:
    bad = write_bad_file(tmp_path, "truncated_jpeg")
    res = run("match", str(bad), str(skimage_photo("astronaut.png")), "--json")
    assert res.exit_code == 1
    results = json.loads(res.stdout)["results"]
    assert "truncated" in results[0]["error"]
    assert results[1]["matches"][0]["asset_id"] == imported["astronaut.png"]
    missing = run("match", str(tmp_path / "nope.jpg"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_rebuild_recomputes_fingerprints_and_status_shows_a_fresh_index(
    imported: dict[str, int]
) -> None:
    res = run("fingerprint", "rebuild", "--json", "--workers", "1")
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["assets"] == 3 and body["errors"] == [] and body["hashes"] == 3 * 34
    status = json.loads(run("fingerprint", "status", "--json").stdout)
    assert status["fresh"] is True and status["generation"] == body["index"]
    assert status["weak"] == []
    # 26 PDQ hashes per photo, less the flat windows (plain sky) below the quality gate.
    stages = status["stages"]
    assert 3 * 20 < stages["hash.pdq"]["indexed"] <= 3 * 26
    assert stages["exact"]["indexed"] == stages["exact"]["database"] == 3
    assert stages["local"]["indexed"] == 3 and stages["local"]["segments"] == 1
    human = run("fingerprint", "rebuild", "--missing")
    assert human.exit_code == 0 and "fingerprinted 0 asset(s)" in human.stdout
    again = json.loads(run("fingerprint", "reindex", "--json").stdout)
    assert again["fresh"] is True and int(again["generation"]) > int(body["index"])
    human_status = run("fingerprint", "status")
    assert "local: 3 of 3 rows indexed in 1 segment(s)" in human_status.stdout


def test_commands_have_help() -> None:
    for args in (["match", "--help"], ["fingerprint", "rebuild", "--help"],
                 ["fingerprint", "status", "--help"], ["fingerprint", "reindex", "--help"]):
        res = run(*args)
        assert res.exit_code == 0 and "--json" in res.stdout
