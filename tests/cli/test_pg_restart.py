"""Fault (issue 13): PostgreSQL restarted in the middle of a clearance job. The job pauses while
the database is away and goes on when it is back, with no item row lost or written twice.

The shared PostgreSQL of the machine is never touched: the test makes its own throwaway cluster
(initdb into a temporary folder, another port) and restarts that one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from registry.db import make_engine
from tests.photos import photo_paths

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent.parent
CLI = "from api.cli import main; main()"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) \
    if Path("/usr/lib/postgresql").is_dir() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


class Cluster:
    def __init__(self, root: Path, port: int) -> None:
        assert PG_BIN is not None
        self.data, self.port, self.log = root / "data", port, root / "log"
        self.ctl = str(PG_BIN / "pg_ctl")
        self.options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(self, *args: str) -> None:
        subprocess.run(_as_postgres(self.ctl, "-D", str(self.data), "-l", str(self.log),
                                    "-o", self.options, "-w", "-t", "60", *args),
                       check=True, capture_output=True, timeout=120)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if PG_BIN is None or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.skip("no PostgreSQL server binaries to make a private cluster")
    root = Path(tempfile.mkdtemp(prefix="ch-pg-"))
    root.chmod(0o777)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    made = subprocess.run(_as_postgres(str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U",
                                       "postgres", "-A", "trust", "--no-sync"),
                          capture_output=True, timeout=120, check=False)
    if made.returncode != 0:
        pytest.skip(f"initdb failed: {made.stderr.decode()[-300:]}")
    pg = Cluster(root, port)
    pg.run("start")
    try:
        yield pg
    finally:
        subprocess.run(_as_postgres(pg.ctl, "-D", str(pg.data), "-m", "immediate", "stop"),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _jpeg(path: Path, size: int, out: Path) -> None:
    image = Image.open(path).convert("RGB")
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    out.write_bytes(buffer.getvalue())


def test_a_clearance_job_pauses_while_postgresql_restarts_and_loses_no_item(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/postgres"
    env = {**os.environ, "CLEARHOUSE_HOME": str(tmp_path / "home"),
           "CLEARHOUSE_DATABASE_URL": url, "CLEARHOUSE_POLICIES_DIR": str(REPO / "policies")}
    photos = photo_paths()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for i, path in enumerate(photos[:3]):
        _jpeg(path, 384, catalog / f"c{i}.jpg")
    subprocess.run([sys.executable, "-c", CLI, "assets", "import", str(catalog),
                    "--rightsholder", "Harbor"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    count = 48
    for i in range(count):
        _jpeg(photos[i % len(photos)], 160 + 3 * i, dataset / f"{i:03d}.jpg")
    job = subprocess.Popen(
        [sys.executable, "-c", CLI, "clear", str(dataset), "--use", "ai_training",
         "--licensee", "Lumen AI", "--batch-size", "2", "--json"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 240
        done = 0
        while done < 4:
            assert job.poll() is None, job.communicate()
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.3)
            try:
                with engine.connect() as conn:
                    done = conn.execute(text("SELECT coalesce(max(done_items), 0) "
                                             "FROM clearance_jobs")).scalar_one()
            except Exception:
                done = 0
        engine.dispose()
        cluster.run("stop", "-m", "fast")  # the database goes away mid-job...
        time.sleep(3)
        assert job.poll() is None, "the job died instead of pausing"
        cluster.run("start")  # ...and comes back
        out, err = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode in (0, 1, 2, 3), err[-2000:]
    assert "retrying" in err  # it did pause on the lost connection
    report = json.loads(out)
    assert report["job"]["status"] == "finished"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows, keys = conn.execute(text(
                "SELECT count(*), count(DISTINCT item_key) FROM clearance_items")).one()
            total, status = conn.execute(text(
                "SELECT total_items, status FROM clearance_jobs")).one()
    finally:
        engine.dispose()
    assert (rows, keys, total, status) == (count, count, count, "finished")
