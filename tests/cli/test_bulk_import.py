"""`clearhouse assets import --workers N`: fingerprints computed in worker processes ahead of the
one-file transactions give the same catalog as the in-line path, bad files included."""

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
from tests.registry.fingerprint.transforms import crop_60

pytestmark = pytest.mark.slow
runner = CliRunner()
PHOTOS = ("astronaut.png", "coffee.png", "rocket.jpg", "chelsea.png", "camera.png")


def test_a_parallel_import_fingerprints_every_asset_and_reports_bad_files(
    clearhouse_env: dict[str, str], tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in PHOTOS:
        shutil.copy(skimage_photo(name), drop / name)
    write_bad_file(drop, "truncated_jpeg")
    res = runner.invoke(app, ["assets", "import", str(drop), "--rightsholder", "Northwind Games",
                              "--workers", "2", "--json"], catch_exceptions=False)
    assert res.exit_code == 1  # the broken file
    body = json.loads(res.stdout)
    assert body["summary"] == {"created": 5, "existing": 0, "error": 1}
    ids = {Path(r["path"]).name: r["asset_id"] for r in body["imported"] if r["asset_id"]}
    status = json.loads(runner.invoke(app, ["fingerprint", "status", "--json"]).stdout)
    assert status["stages"]["local"]["database"] == 5 and status["weak"] == []
    query = tmp_path / "query.png"
    crop_60(Image.open(skimage_photo("chelsea.png")).convert("RGB")).save(query)
    found = json.loads(runner.invoke(app, ["match", str(query), "--json"]).stdout)
    assert found["results"][0]["matches"][0]["asset_id"] == ids["chelsea.png"]
