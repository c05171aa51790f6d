"""Bulk import of files and folders into the catalog, one transaction per file.

A file that fails (unreadable, unsupported, too large) is reported with its reason and leaves
nothing behind; the batch goes on. Importing the same files again returns the existing assets.
A sidecar (CSV or JSON) can give per-file title, franchise and tags.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from registry.audit import SYSTEM, Actor
from registry.catalog.blobs import BlobStore
from registry.catalog.service import ensure_franchise, ensure_rightsholder, register_asset
from registry.db import session_scope
from registry.errors import InvalidInput, RegistryError
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Probed

ImportStatus = Literal["created", "existing", "error"]
# Called after an asset row is flushed, inside the file's transaction (e.g. to fingerprint it).
AfterRegister = Callable[[Session, Any, bytes], None]


@dataclass(frozen=True)
class SidecarEntry:
    title: str | None = None
    franchise: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class ImportResult:
    path: str
    status: ImportStatus
    asset_id: int | None = None
    sha256: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "asset_id": self.asset_id,
            "sha256": self.sha256,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class ImportOptions:
    rightsholder: str
    franchise: str | None = None
    tags: Sequence[str] = ()
    sidecar: dict[str, SidecarEntry] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    actor: Actor | str = SYSTEM  # who imports (the audit log names them)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given, and the files under folders given (recursive, sorted, hidden ones skipped)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
        else:
            out.append(path)
    return out


def _split_tags(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return tuple(t for t in str(value).replace(",", ";").split(";") if t.strip())


def read_sidecar(path: Path) -> dict[str, SidecarEntry]:
    """Read a CSV (columns path,title,franchise,tags with tags split on ';') or a JSON list of
    objects with the same keys. Paths are taken relative to the sidecar's folder; the result is
    keyed by resolved path."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read sidecar ({exc})") from exc
    rows: list[dict[str, Any]]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidInput(f"{path}: expected a JSON list of objects")
        rows = data
    else:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise InvalidInput(f"{path}: CSV sidecar needs a 'path' column")
        rows = list(reader)
    out: dict[str, SidecarEntry] = {}
    for number, row in enumerate(rows, start=1):
        if not row.get("path"):
            raise InvalidInput(f"{path}: entry {number} has no 'path'")
        key = str((path.parent / str(row["path"])).resolve())
        out[key] = SidecarEntry(
            title=row.get("title") or None,
            franchise=row.get("franchise") or None,
            tags=_split_tags(row.get("tags")),
        )
    return out


def import_file(
    factory: sessionmaker[Session],
    store: BlobStore,
    path: Path,
    options: ImportOptions,
    after_register: AfterRegister | None = None,
    probed: Probed | None = None,
) -> ImportResult:
    """Import one file in its own transaction (`probed`: a worker's validation of it, see
    `register_asset`)."""
    label = str(path)
    entry = options.sidecar.get(str(path.resolve()), SidecarEntry())
    try:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return ImportResult(label, "error", error=f"{label}: cannot read ({exc.strerror})")
        with session_scope(factory) as session:
            holder = ensure_rightsholder(session, name=options.rightsholder)
            franchise_name = entry.franchise or options.franchise
            franchise = (
                ensure_franchise(session, name=franchise_name, rightsholder=holder)
                if franchise_name
                else None
            )
            asset, created = register_asset(
                session,
                store=store,
                data=data,
                name=label,
                rightsholder=holder,
                franchise=franchise,
                title=entry.title,
                tags=[*options.tags, *entry.tags],
                max_bytes=options.max_bytes,
                max_pixels=options.max_pixels,
                actor=options.actor,
                probed=probed,
            )
            if created and after_register is not None:
                after_register(session, asset, data)
            return ImportResult(
                label, "created" if created else "existing", asset.id, asset.sha256
            )
    except RegistryError as exc:
        return ImportResult(label, "error", error=exc.message)


def import_paths(
    factory: sessionmaker[Session],
    store: BlobStore,
    paths: Iterable[Path],
    options: ImportOptions,
    *,
    after_register: AfterRegister | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> list[ImportResult]:
    results = []
    for path in expand_paths(paths):
        result = import_file(factory, store, path, options, after_register)
        results.append(result)
        if on_progress is not None:
            on_progress(result)
    return results
