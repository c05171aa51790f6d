"""Faults (issue 13): a disk that fills while a blob is written, and a server killed with SIGKILL
in the middle of an upload burst. Real processes, real files, both backends."""

from __future__ import annotations

import io
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from registry.access import create_api_key
from registry.catalog import Asset, BlobStore
from registry.catalog.doctor import check_store, remove_orphans
from registry.db import make_engine, make_session_factory, migrate, session_scope
from tests.photos import photo_paths

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent.parent
CLI = "from api.cli import main; main()"
FILE_LIMIT_BYTES = 256 * 1024


def _png(path: Path, size: int) -> bytes:
    image = Image.open(path).convert("RGB").resize((size, size))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _limit_file_size() -> None:
    # A disk that fills: every write past FILE_LIMIT_BYTES fails with EFBIG (not a signal).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES))


def _asset_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Asset)).scalar_one())
    finally:
        engine.dispose()


def test_a_disk_that_fills_while_a_blob_is_written_leaves_nothing_half_written(
    clearhouse_env: dict[str, str], tmp_path: Path
) -> None:
    url = clearhouse_env["CLEARHOUSE_DATABASE_URL"]
    home = Path(clearhouse_env["CLEARHOUSE_HOME"])
    migrate(url)  # before the limit: the schema is written by a process with room to write
    small = tmp_path / "small.png"
    small.write_bytes(_png(photo_paths()[0], 64))
    big = tmp_path / "big.png"
    big.write_bytes(_png(photo_paths()[1], 640))
    assert big.stat().st_size > FILE_LIMIT_BYTES > small.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", CLI, "assets", "import", str(small), str(big), "--rightsholder",
         "Harbor", "--json"],
        cwd=REPO, env={**os.environ, **clearhouse_env}, capture_output=True, text=True,
        timeout=300, preexec_fn=_limit_file_size, check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    import json

    results = {Path(r["path"]).name: r for r in json.loads(done.stdout)["imported"]}
    assert results["small.png"]["status"] == "created"
    assert results["big.png"]["status"] == "error"
    assert "cannot store blob" in results["big.png"]["error"]
    assert "too large" in results["big.png"]["error"].lower()
    assert _asset_count(url) == 1
    files = [p for p in (home / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and not any(p.name.startswith(".") for p in files)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_killed_during_an_upload_burst_leaves_nothing_the_doctor_cannot_fix(
    clearhouse_env: dict[str, str], tmp_path: Path
) -> None:
    url = clearhouse_env["CLEARHOUSE_DATABASE_URL"]
    home = Path(clearhouse_env["CLEARHOUSE_HOME"])
    migrate(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        _, plain = create_api_key(session, name="burst", role="legal")
    engine.dispose()
    headers = {"Authorization": f"Bearer {plain}"}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys, uvicorn; from api.app import create_app; "
         "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), "
         "log_level='error')", str(port)],
        cwd=REPO, env={**os.environ, **clearhouse_env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        httpx.post(f"{base}/v1/rightsholders", headers=headers, json={"name": "Harbor"},
                   timeout=30).raise_for_status()
        photos = photo_paths()
        payloads = [_png(photos[i % len(photos)], 200 + i) for i in range(40)]
        answered: list[int] = []

        def upload(n: int) -> None:
            try:
                res = httpx.post(f"{base}/v1/assets", headers=headers, timeout=60,
                                 data={"rightsholder": "Harbor"},
                                 files={"file": (f"{n}.png", payloads[n], "image/png")})
                answered.append(res.status_code)
            except httpx.HTTPError:
                pass  # the server died under this request

        threads = [threading.Thread(target=upload, args=(n,)) for n in range(len(payloads))]
        for thread in threads:
            thread.start()
        while len(answered) < 3 and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        for thread in threads:
            thread.join(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
    assert all(code == 201 for code in answered), answered
    assert 3 <= len(answered) < len(payloads)  # killed in the middle of the burst
    engine = make_engine(url)
    factory = make_session_factory(engine)
    store = BlobStore(home / "blobs")
    try:
        with factory() as session:
            check = check_store(session, store)
            assert check.missing == []  # every committed row has its blob
            remove_orphans(check, grace_s=0)
            after = check_store(session, store)
            rows = session.scalar(select(func.count()).select_from(Asset))
    finally:
        engine.dispose()
    assert after.ok, after.as_dict()
    assert rows is not None and rows >= len(answered)
    assert after.blobs == rows
