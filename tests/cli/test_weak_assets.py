"""`clearhouse assets import` flags weakly protectable assets with the reason, and
`clearhouse fingerprint status` lists them (issue 11), on both backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from api.cli import app
from tests.photos import skimage_photo

runner = CliRunner()


def test_import_and_status_name_the_weak_asset_and_why(
    clearhouse_env: dict[str, str], tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(skimage_photo("coffee.png"), drop / "coffee.png")
    Image.new("RGB", (400, 300), (120, 160, 210)).save(drop / "sky.png")  # a cloudless sky
    res = runner.invoke(app, ["assets", "import", str(drop), "--rightsholder", "Northwind",
                              "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    ids = {Path(r["path"]).name: r["asset_id"] for r in body["imported"]}
    assert [(Path(w["path"]).name, w["asset_id"]) for w in body["weak"]] == [
        ("sky.png", ids["sky.png"])]
    assert body["weak"][0]["reason"].startswith("flat: ")
    status = json.loads(runner.invoke(app, ["fingerprint", "status", "--json"]).stdout)
    assert status["weak"] == [ids["sky.png"]] and status["stale"] == []
    assert status["weak_reasons"][str(ids["sky.png"])].startswith("flat: ")
    human = runner.invoke(app, ["fingerprint", "status"])
    assert f"asset {ids['sky.png']}: flat: " in human.stdout
