"""Bounded load test of the API on loopback, with a clearance job running (issue 13).

A real server (`uvicorn` in its own process, 127.0.0.1 only) on a fresh home, on SQLite and on
PostgreSQL. The catalog holds real photos; a clearance job over an uploaded archive runs in the
server while C client threads send a fixed mix of requests:
- `POST /v1/match` (a resized catalog photo, partner key),
- `POST /v1/decisions` (a batch of asset ids, legal key),
- `POST /v1/assets` (the same photo again and again: 200 existing; plus a few new ones),
- `GET /v1/clearances/{id}` (ml key, the job's progress).
Baseline, measured in the same run: the same requests one at a time with no job running. Printed:
requests, errors (any status other than the expected), p50 and p99 per kind under load, and the
ratio of each to its baseline; the run is bounded by a request count and a time limit.

Run: .venv/bin/python bench/bench_load.py [--requests 400] [--clients 8] [--backend both]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.access import create_api_key
from registry.db import make_engine, make_session_factory, migrate, session_scope
from tests.photos import photo_paths

PG_ADMIN = os.environ.get("CLEARHOUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POLICY = """\
id: load-training
licensor: Load Studio
licensee: Load AI
grants:
  - use: ai_training
    permission: allowed
    scope:
      tags: [open]
"""
TIME_LIMIT_S = 600
SERVER = """
import sys, uvicorn
from api.app import create_app
uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            workers=1, timeout_keep_alive=30)
"""


def jpeg(path: Path, size: int, quality: int = 90) -> bytes:
    image = Image.open(path).convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    name = f"ch_load_{uuid.uuid4().hex[:10]}"
    conn = psycopg.connect(admin, autocommit=True)
    conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return PG_ADMIN.rpartition("/")[0] + f"/{name}", drop


class Run:
    def __init__(self, url: str, keys: dict[str, dict[str, str]], photos: list[Path]) -> None:
        self.url, self.keys = url, keys
        self.query = jpeg(photos[0], 400, 70)
        self.same = jpeg(photos[1], 300)
        self.fresh = [jpeg(p, 200 + i) for i, p in enumerate(photos[6:])]
        self.job_id: int | None = None

    def call(self, client: httpx.Client, kind: str, n: int) -> tuple[str, float, bool, int]:
        started = time.perf_counter()
        if kind == "match":
            res = client.post(f"{self.url}/v1/match", headers=self.keys["partner"],
                              files={"files": ("q.jpg", self.query, "image/jpeg")})
            ok = res.status_code == 200 and res.json()["results"][0]["error"] is None
        elif kind == "decide":
            res = client.post(f"{self.url}/v1/decisions", headers=self.keys["legal"],
                              json={"use": "ai_training", "licensee": "Load AI",
                                    "assets": [1, 2, 3, 4, 5]})
            ok = res.status_code == 200
        elif kind == "upload":
            data = self.fresh[n % len(self.fresh)] if n % 10 == 0 else self.same
            res = client.post(f"{self.url}/v1/assets", headers=self.keys["legal"],
                              data={"rightsholder": "Load Studio", "tags": "open"},
                              files={"file": (f"u{n}.jpg", data, "image/jpeg")})
            ok = res.status_code in (200, 201)
        else:
            res = client.get(f"{self.url}/v1/clearances/{self.job_id}", headers=self.keys["ml"])
            ok = res.status_code == 200
        return kind, time.perf_counter() - started, ok, res.status_code


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_backend(backend: str, requests: int, clients: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix=f"ch-load-{backend}-"))
    drop: Callable[[], None] | None = None
    if backend == "postgresql":
        url, drop = pg_database()
    else:
        url = f"sqlite:///{tmp / 'home' / 'clearhouse.db'}"
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "load.yaml").write_text(POLICY)
    env = {**os.environ, "CLEARHOUSE_HOME": str(tmp / "home"), "CLEARHOUSE_DATABASE_URL": url,
           "CLEARHOUSE_POLICIES_DIR": str(policies), "CLEARHOUSE_MAX_WORKERS": "1"}
    migrate(url)
    engine = make_engine(url)
    keys = {}
    with session_scope(make_session_factory(engine)) as session:
        for role in ("legal", "ml", "partner"):
            _, plain = create_api_key(session, name=f"load-{role}", role=role)
            keys[role] = {"Authorization": f"Bearer {plain}"}
    engine.dispose()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env,
                              cwd=Path(__file__).resolve().parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        photos = photo_paths()
        run = Run(base, keys, photos)
        with httpx.Client(timeout=120) as client:
            client.post(f"{base}/v1/rightsholders", headers=keys["legal"],
                        json={"name": "Load Studio"}).raise_for_status()
            for i, path in enumerate(photos[:6]):
                res = client.post(f"{base}/v1/assets", headers=keys["legal"],
                                  data={"rightsholder": "Load Studio", "tags": "open"},
                                  files={"file": (f"c{i}.jpg", jpeg(path, 512), "image/jpeg")})
                res.raise_for_status()
            kinds = ["match", "decide", "upload", "status"]
            # Baseline: each kind alone, one at a time, no job running.
            run.job_id = 1
            baseline: dict[str, list[float]] = {k: [] for k in kinds}
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                for i in range(60):
                    data = jpeg(photos[i % len(photos)], 128 + i)
                    info = tarfile.TarInfo(f"{i:03d}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            job = client.post(f"{base}/v1/clearances/archive", headers=keys["ml"],
                              data={"use": "ai_training", "licensee": "Load AI"},
                              files={"file": ("warm.tar", archive.getvalue())})
            job.raise_for_status()
            run.job_id = job.json()["id"]
            while client.get(f"{base}/v1/clearances/{run.job_id}",
                             headers=keys["ml"]).json()["status"] in ("pending", "running"):
                time.sleep(0.5)
            for kind in kinds:
                for n in range(8):
                    _, took, ok, status = run.call(client, kind, n)
                    assert ok, (kind, status)
                    baseline[kind].append(took)
            # Under load: a new job over a larger archive runs while the clients hammer.
            big = io.BytesIO()
            with tarfile.open(fileobj=big, mode="w") as tar:
                for i in range(400):
                    data = jpeg(photos[i % len(photos)], 96 + i % 160, 60 + i % 30)
                    info = tarfile.TarInfo(f"{i:04d}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            job = client.post(f"{base}/v1/clearances/archive", headers=keys["ml"],
                              data={"use": "ai_training", "licensee": "Load AI"},
                              files={"file": ("load.tar", big.getvalue())})
            job.raise_for_status()
            run.job_id = job.json()["id"]
        started = time.monotonic()
        results: list[tuple[str, float, bool, int]] = []

        def worker(n: int) -> tuple[str, float, bool, int]:
            if time.monotonic() - started > TIME_LIMIT_S:
                return "skipped", 0.0, True, 0
            with httpx.Client(timeout=120) as own:
                return run.call(own, kinds[n % len(kinds)], n)

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(worker, range(requests)))
        elapsed = time.monotonic() - started
        with httpx.Client(timeout=60) as client:
            status = client.get(f"{base}/v1/clearances/{run.job_id}", headers=keys["ml"]).json()
            while status["status"] in ("pending", "running"):
                time.sleep(1)
                status = client.get(f"{base}/v1/clearances/{run.job_id}",
                                    headers=keys["ml"]).json()
            total = client.get(f"{base}/v1/assets?limit=1", headers=keys["legal"]).json()["total"]
    finally:
        server.terminate()
        server.wait(30)
        if drop is not None:
            drop()
    done = [r for r in results if r[0] != "skipped"]
    errors = [r for r in done if not r[2]]
    rows = {}
    for kind in kinds:
        took = [r[1] for r in done if r[0] == kind]
        base_p50 = statistics.median(baseline[kind])
        rows[kind] = {"n": len(took), "p50": statistics.median(took),
                      "p99": percentile(took, 0.99), "baseline_p50": base_p50}
    return {"backend": backend, "requests": len(done), "errors": len(errors),
            "error_statuses": sorted({r[3] for r in errors}), "elapsed": elapsed,
            "rows": rows, "job": status, "assets": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        out = run_backend(backend, args.requests, args.clients)
        job = out["job"]
        assert isinstance(job, dict)
        print(f"== {backend}: {out['requests']} requests from {args.clients} clients in "
              f"{out['elapsed']:.1f} s, {out['errors']} errors {out['error_statuses']}; "
              f"clearance job {job['status']} {job['done_items']}/{job['total_items']} items "
              f"(summary {job['summary']}); catalog {out['assets']} assets")
        rows = out["rows"]
        assert isinstance(rows, dict)
        for kind, row in rows.items():
            print(f"   {kind:7s} n={row['n']:4d}  p50 {row['p50'] * 1000:7.1f} ms  "
                  f"p99 {row['p99'] * 1000:7.1f} ms  baseline p50 "
                  f"{row['baseline_p50'] * 1000:7.1f} ms  p50/baseline "
                  f"{row['p50'] / row['baseline_p50']:.2f}x")


if __name__ == "__main__":
    main()
