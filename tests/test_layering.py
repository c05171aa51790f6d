"""registry/ is the domain core: it never imports api/, FastAPI or Starlette (walked with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

REGISTRY = Path(__file__).resolve().parent.parent / "registry"
FORBIDDEN = ("api", "fastapi", "starlette", "uvicorn", "typer")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_registry_never_imports_the_doors() -> None:
    offenders = [
        f"{path.relative_to(REGISTRY.parent)}: {name}"
        for path in sorted(REGISTRY.rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_layering_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from api.app import create_app\nimport fastapi\n")
    assert _imports(bad) == ["api.app", "fastapi"]
