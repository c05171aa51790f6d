"""The CLI as a newcomer meets it: a fast --help, tables that fit 80 columns, a home that says
where it is, policies found from the home, and /docs that works offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry.settings import Settings
from tests.photos import skimage_photo

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("clearhouse"))
HEAVY = ("sqlalchemy", "numpy", "PIL", "cv2", "faiss", "c2pa", "av", "registry")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env={**os.environ, **env, "COLUMNS": "80"}, cwd=cwd,
                          text=True, capture_output=True, timeout=300)


@pytest.mark.slow
def test_help_imports_no_heavy_library_and_answers_fast() -> None:
    probe = ("import sys; sys.argv = ['clearhouse', '--help']\n"
             "from api.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, text=True,
                         capture_output=True, timeout=60).stdout
    assert "LOADED []" in out, out[-300:]
    best = min(_timed([CLI, "--help"]) for _ in range(3))
    full = _timed([sys.executable, "-c", "import api.cli; api.cli.build_app()"])
    print(f"clearhouse --help: {best:.3f} s; importing every command: {full:.3f} s "
          f"({full / best:.1f}x)")
    assert best < 1.0


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, timeout=120, check=True)
    return time.perf_counter() - start


def test_the_quick_help_lists_exactly_the_real_commands() -> None:
    import typer.main

    from api.cli import COMMANDS, build_app

    real = typer.main.get_command(build_app())
    names = set(real.commands)  # type: ignore[attr-defined]
    assert set(COMMANDS) == names, ("api/cli/__init__.py COMMANDS is out of date: "
                                    f"missing {names - set(COMMANDS)}, "
                                    f"extra {set(COMMANDS) - names}")
    for name, text in COMMANDS.items():
        help_text = " ".join((real.commands[name].help or "").split())  # type: ignore[attr-defined]
        assert help_text.startswith(text.split(". ")[0].rstrip(".")), name


@pytest.mark.slow
def test_help_and_assets_list_print_no_truncated_cell_at_80_columns(
    tmp_path: Path,
) -> None:
    env = {"CLEARHOUSE_HOME": str(tmp_path / "home")}
    folder = tmp_path / "a very long folder name for the harbor lights press kit"
    folder.mkdir()
    long_name = "chelsea_the_cat_in_high_resolution_final_version_two.png"
    (folder / long_name).write_bytes(skimage_photo("chelsea.png").read_bytes())
    (folder / "coffee.png").write_bytes(skimage_photo("coffee.png").read_bytes())
    imported = _run(["assets", "import", str(folder), "--rightsholder",
                     "Meridian Pictures International", "--franchise",
                     "Harbor Lights Extended Universe", "--tag", "unreleased-material"],
                    env, tmp_path)
    assert imported.returncode == 0, imported.stderr
    printed = {}
    for args in (["--help"], ["assets", "list"], ["clearances", "list"], ["keys", "list"]):
        result = _run(args, env, tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "…" not in result.stdout, result.stdout
        assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
        printed[" ".join(args)] = result.stdout
    listed = printed["assets list"]
    assert "chelsea_the_cat_in_high_resolution_final_version_two" in _column(listed, "title")
    assert "unreleased-material" in _column(listed, "tags")
    shown = _run(["assets", "show", "1"], env, tmp_path).stdout
    assert "[" not in shown and "{" not in shown  # no Python reprs


def _column(table: str, header: str) -> str:
    """The text of one column of a Rich table, its folded lines joined back."""
    lines = table.splitlines()
    head = next(i for i, line in enumerate(lines) if f" {header} " in f" {line} ")
    starts = sorted(m.start() for m in re.finditer(r"\S+", lines[head]))
    begin = lines[head].index(header)
    end = next((s for s in starts if s > begin), None)
    return "".join(line[begin:end].strip() for line in lines[head + 2:])


@pytest.mark.slow
def test_a_new_home_says_where_it_is_and_policies_come_from_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "registry-home"
    elsewhere = tmp_path / "some-folder"
    elsewhere.mkdir()
    env = {"CLEARHOUSE_HOME": str(home)}
    first = _run(["assets", "list"], env, elsewhere)
    assert f"created a new registry home at {home}" in first.stderr
    again = _run(["assets", "list"], env, elsewhere)
    assert "created" not in again.stderr
    init = _run(["init"], env, tmp_path)
    assert f"policies: {home / 'policies'}" in init.stdout
    assert (home / "policies").is_dir()
    # Not the working directory's policies/ folder.
    monkeypatch.chdir(elsewhere)
    assert Settings(home=home).policies_dir == home / "policies"
    assert Settings(home=home, policies_dir=tmp_path / "p").policies_dir == tmp_path / "p"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_work_offline(tmp_path: Path, path: str) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(Settings(home=tmp_path / "home"))
    with TestClient(app) as client:
        page = client.get(path)
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text.replace(
            "https://fastapi.tiangolo.com", "")  # no CDN: every asset is ours
        for asset in ("swagger-ui-bundle.js", "redoc.standalone.js"):
            if asset in page.text:
                assert client.get(f"/static-offline-docs/{asset}").status_code == 200
    app.state.engine.dispose()
