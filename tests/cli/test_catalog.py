"""The `clearhouse` CLI for the catalog and API keys, on both backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from registry.catalog import BlobStore
from registry.db import make_engine, make_session_factory
from tests.factories import snapshot, write_bad_file
from tests.photos import skimage_photo

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("astronaut.png", "coffee.png", "rocket.jpg"):
        shutil.copy(skimage_photo(name), folder / name)
    return folder


def _state(env: dict[str, str]) -> dict[str, object]:
    engine = make_engine(env["CLEARHOUSE_DATABASE_URL"])
    try:
        return snapshot(
            make_session_factory(engine), BlobStore(Path(env["CLEARHOUSE_HOME"]) / "blobs")
        )
    finally:
        engine.dispose()


def test_import_twice_reports_created_then_existing(
    clearhouse_env: dict[str, str], drop: Path
) -> None:
    args = [
        "assets",
        "import",
        str(drop),
        "--rightsholder",
        "Northwind Games",
        "--franchise",
        "Skyreach",
        "--tag",
        "demo",
        "--json",
    ]
    first = run(*args)
    assert first.exit_code == 0, first.output
    imported = json.loads(first.stdout)["imported"]
    assert [i["status"] for i in imported] == ["created"] * 3
    assert set(imported[0]) >= {"path", "asset_id", "sha256", "status", "error"}
    second = json.loads(run(*args).stdout)["imported"]
    assert [i["status"] for i in second] == ["existing"] * 3
    assert [i["asset_id"] for i in second] == [i["asset_id"] for i in imported]
    listed = json.loads(run("assets", "list", "--json").stdout)
    assert listed["total"] == 3
    shown = json.loads(run("assets", "show", imported[0]["sha256"], "--json").stdout)
    assert shown["franchise"] == "Skyreach" and shown["tags"] == ["demo"]
    names = json.loads(run("franchises", "list", "--json").stdout)
    assert [f["name"] for f in names["franchises"]] == ["Skyreach"]
    holders = json.loads(run("rightsholders", "list", "--json").stdout)
    assert [h["name"] for h in holders["rightsholders"]] == ["Northwind Games"]


@pytest.mark.parametrize(
    "case", ["truncated_jpeg", "text_named_png", "zero_bytes", "unknown_format_bmp", "header_bomb"]
)
def test_a_bad_file_gives_one_clear_line_and_a_nonzero_exit(
    clearhouse_env: dict[str, str], tmp_path: Path, case: str
) -> None:
    run("rightsholders", "create", "Northwind Games")
    before = _state(clearhouse_env)
    path = write_bad_file(tmp_path, case)
    result = run("assets", "import", str(path), "--rightsholder", "Northwind Games")
    assert result.exit_code == 1
    assert path.name in result.output
    assert _state(clearhouse_env) == before


def test_unknown_paths_and_assets_fail_in_one_line(clearhouse_env: dict[str, str]) -> None:
    missing = run("assets", "import", "/nonexistent/x.png", "--rightsholder", "NW")
    assert missing.exit_code == 1
    assert "no such file" in missing.output
    nf = run("assets", "show", "999")
    assert nf.exit_code == 1 and nf.output.strip().count("\n") == 0
    assert "not found" in nf.output


def test_api_keys_are_created_listed_and_revoked(clearhouse_env: dict[str, str]) -> None:
    made = json.loads(run("keys", "create", "--role", "ml", "--name", "trainer", "--json").stdout)
    assert made["key"].startswith("ch_") and made["role"] == "ml"
    listed = json.loads(run("keys", "list", "--json").stdout)["keys"]
    assert [k["prefix"] for k in listed] == [made["prefix"]]
    assert made["key"] not in json.dumps(listed)
    assert run("keys", "revoke", made["prefix"]).exit_code == 0
    bad = run("keys", "create", "--role", "overlord")
    assert bad.exit_code == 1 and "unknown role" in bad.output


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["assets", "import", "--help"],
        ["assets", "list", "--help"],
        ["keys", "create", "--help"],
        ["licences", "create", "--help"],
    ):
        assert run(*args).exit_code == 0
