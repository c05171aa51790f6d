"""Console render time at scale: the clearance job page and the review queue of a 100,000-item
job, and the catalog of 100,000 assets, against the same pages of a 10-item job and a 10-asset
catalog (the baseline), measured in the same run against the same app and database.

Server-side time: each request goes through the whole ASGI app in process (session lookup, the
queries, Jinja rendering) with Starlette's TestClient; no network, no browser. The target is a
p95 under 300 ms, and a ratio to the baseline near 1 (the pages are index ranges, never a scan
or a sort of the whole job).

Run: .venv/bin/python bench/bench_console.py [--items 100000] [--assets 100000] [--repeat 30]
     [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB]  (an empty database)
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from api.app import create_app
from registry.access import create_api_key
from registry.catalog import Asset, Rightsholder
from registry.clearance import ClearanceItem, ClearanceJob
from registry.db import session_scope, utcnow
from registry.settings import Settings

VERDICT_MIX = [("clear", 0.70), ("blocked", 0.10), ("review", 0.15), ("error", 0.05)]
CHUNK = 5000


def seed_assets(factory: object, count: int, holder_name: str) -> list[int]:
    with session_scope(factory) as session:  # type: ignore[arg-type]
        holder = Rightsholder(name=holder_name)
        session.add(holder)
        session.flush()
        holder_id = holder.id
        now = utcnow()
        first = None
        for start in range(0, count, CHUNK):
            rows = [{"kind": "image", "title": f"{holder_name} still {i:06d}",
                     "sha256": f"{holder_id:04x}{i:060x}", "size_bytes": 200_000 + i,
                     "width": 1920, "height": 1080, "media_type": "image/jpeg",
                     "blob_path": f"x/{i}", "rightsholder_id": holder_id, "created_at": now}
                    for i in range(start, min(start + CHUNK, count))]
            session.execute(insert(Asset), rows)
        ids = [a for (a,) in session.execute(
            Asset.__table__.select().with_only_columns(Asset.id)
            .where(Asset.rightsholder_id == holder_id))]
        del first
    return ids


def seed_job(factory: object, items: int, asset_ids: list[int], rng: random.Random) -> int:
    with session_scope(factory) as session:  # type: ignore[arg-type]
        now = utcnow()
        job = ClearanceJob(status="finished", dataset_uri="/data/bench/" + "x" * 40,
                           dataset_kind="folder", use="ai_training", licensee="Bench AI",
                           owner="bench", total_items=items, done_items=items,
                           created_at=now, started_at=now, finished_at=now)
        session.add(job)
        session.flush()
        job_id = job.id
        verdicts = [v for v, _ in VERDICT_MIX]
        weights = [w for _, w in VERDICT_MIX]
        for start in range(0, items, CHUNK):
            rows = []
            for seq in range(start, min(start + CHUNK, items)):
                verdict = rng.choices(verdicts, weights)[0]
                matches = [] if verdict in ("clear", "error") and seq % 3 else [{
                    "asset_id": rng.choice(asset_ids), "signal": "pdq", "distance": 12,
                    "confidence": 0.8, "region": [0, 0, 256, 256], "decision":
                    {"clear": "allowed", "blocked": "denied"}.get(verdict, "review"),
                    "explanation": "asset: ai_training for Bench AI -> review (constrained)",
                    "rule": "constrained_needs_review", "decided_by": "bench#grants[0]"}]
                key = f"shard{seq // 1000:04d}/{seq:07d}.jpg"
                rows.append({"job_id": job_id, "item_key": key, "seq": seq,
                             "path": f"/data/bench/{key}",
                             "sha256": f"{seq:064x}", "size_bytes": 30_000,
                             "machine_verdict": verdict, "verdict": verdict, "matches": matches,
                             "error": "corrupt or truncated image" if verdict == "error" else None,
                             "signals": [], "created_at": now})
            session.execute(insert(ClearanceItem), rows)
    return job_id


def sign_in(client: TestClient, key: str) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    res = client.post("/console/login", data={"key": key, "csrf_token": token},
                      headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert res.status_code == 303, res.text


def timed(client: TestClient, path: str, repeat: int) -> tuple[float, float]:
    client.get(path)  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        res = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert res.status_code == 200, (path, res.status_code, res.text[:300])
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(12)
    home = Path(tempfile.mkdtemp(prefix="bench-console-"))
    settings = Settings(home=home, database_url=args.database_url,
                        policies_dir=home / "no-policies", resume_jobs_on_start=False)
    app = create_app(settings)
    factory = app.state.session_factory
    t0 = time.perf_counter()
    small_assets = seed_assets(factory, 10, "Small Studio")
    big_assets = seed_assets(factory, args.assets, "Big Studio")
    small_job = seed_job(factory, 10, small_assets, rng)
    big_job = seed_job(factory, args.items, big_assets, rng)
    with session_scope(factory) as session:
        key = create_api_key(session, name="bench-legal", role="legal")[1]
    # Statistics and PostgreSQL's visibility map, as autovacuum would have them on a live server
    # (without them PostgreSQL cannot count through the index alone).
    with app.state.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"))
    print(f"seeded {args.assets:,} + 10 assets, jobs of {args.items:,} and 10 items in "
          f"{time.perf_counter() - t0:.1f} s ({settings.resolved_database_url.split(':')[0]})")
    big_rh = 2  # Big Studio is the second rightsholder
    pages = [
        ("job page", "/console/clearances/{job}", None),
        ("job page, review filter", "/console/clearances/{job}?verdict=review", None),
        ("job page, blocked, page 2", "/console/clearances/{job}?verdict=blocked&page=2", None),
        ("job page, search", "/console/clearances/{job}?q=0000007", None),
        ("review queue of the job", "/console/clearances/{job}/review", None),
        ("catalog", "/console/assets?rightsholder_id={rh}", None),
        ("catalog, search", "/console/assets?rightsholder_id={rh}&q=still%2000000", None),
    ]
    with TestClient(app) as client:
        sign_in(client, key)
        print(f"{'page':32} {'10 (baseline) p50/p95 ms':>26} {'100k p50/p95 ms':>20} "
              f"{'p95 ratio':>9}")
        worst = 0.0  # over the pages the acceptance names (job page, review queue)
        scans = 0.0  # text searches: a substring scan of the job or catalog by nature
        for label, template, _ in pages:
            small = timed(client, template.format(job=small_job, rh=1), args.repeat)
            big = timed(client, template.format(job=big_job, rh=big_rh), args.repeat)
            if "search" in label:
                scans = max(scans, big[1])
            elif label.startswith(("job page", "review")):
                worst = max(worst, big[1])
            print(f"{label:32} {small[0]:12.1f} / {small[1]:7.1f} {big[0]:10.1f} / "
                  f"{big[1]:7.1f} {big[1] / small[1]:8.2f}x")
        queue = timed(client, "/console/review", args.repeat)
        worst = max(worst, queue[1])
        print(f"{'review queue (all jobs)':32} {'':>26} {queue[0]:10.1f} / {queue[1]:7.1f}")
        print(f"job page and review queue, worst p95 at scale: {worst:.1f} ms (target < 300 ms):"
              f" {'OK' if worst < 300 else 'OVER'}; text searches, worst p95: {scans:.1f} ms")
    app.state.engine.dispose()


if __name__ == "__main__":
    main()
