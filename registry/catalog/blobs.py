"""Content-addressed blob store: each file lives once, at blobs/<aa>/<bb>/<sha256>.

Writes are atomic (temporary file, fsync, rename). A blob written inside a transaction is tied to
it: if the session rolls back, the blobs it created are removed again, so a failed import never
leaves an orphan file behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from registry.errors import StorageError
from registry.files import PRIVATE_FILE_MODE, write_atomically

_PENDING_KEY = "clearhouse_new_blobs"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def relative_path(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path(self, sha256: str) -> Path:
        return self.root / self.relative_path(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put(self, session: Session, data: bytes, sha256: str | None = None) -> str:
        """Store `data` (idempotent) and return its relative path.

        A file created here is removed again if `session` rolls back.
        """
        digest = sha256 or sha256_bytes(data)
        target = self.path(digest)
        if target.is_file():
            return self.relative_path(digest)
        try:
            write_atomically(target, data, mode=PRIVATE_FILE_MODE)  # originals are not for others
        except OSError as exc:  # disk full, quota, file size limit: the temporary file is gone
            raise StorageError(f"cannot store blob {digest[:12]}: {exc.strerror or exc}",
                               detail={"errno": exc.errno}) from exc
        _track(session, target)
        return self.relative_path(digest)

    def files(self) -> list[Path]:
        """Every stored blob (for consistency checks and backups)."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.rglob("*") if p.is_file() and p.name[0] != ".")


def _track(session: Session, path: Path) -> None:
    pending: list[Path] = session.info.setdefault(_PENDING_KEY, [])
    pending.append(path)


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _remove_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Blobs belong to the outermost transaction: do not wrap BlobStore.put in a savepoint.
    if previous_transaction.parent is not None:
        return
    for path in session.info.pop(_PENDING_KEY, []):
        path.unlink(missing_ok=True)
