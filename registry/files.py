"""Writing files whole or not at all: the blob store and the key store both rely on it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PUBLIC_FILE_MODE = 0o644
PRIVATE_FILE_MODE = 0o600


def write_atomically(path: Path, data: bytes, *, mode: int = PUBLIC_FILE_MODE) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync and rename.

    A reader sees the old file or the new one, never half of it; the file has `mode` from the
    moment it exists (so a private key is never world-readable, even briefly).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if mode == PRIVATE_FILE_MODE
                      else 0o777)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it owner-only (0700): CLEARHOUSE_HOME holds the
    database, the originals and the signing keys."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path
