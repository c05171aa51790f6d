"""A large clearance job made directly in the database (no matching): for the HTML report's
browser test and bench/bench_report.py. Items are `clear` except every 10th `blocked` (a match
with a region on a real photo's thumbnail), every 25th `review` and every 50th `error`."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image
from sqlalchemy import insert
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.clearance.models import ClearanceItem, ClearanceJob
from tests.factories import make_asset, make_rightsholder
from tests.photos import skimage_photo


def _thumb(name: str) -> bytes:
    image = Image.open(skimage_photo(name)).convert("RGB")
    image.thumbnail((160, 160))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def verdict_of(n: int) -> str:
    if n % 50 == 7:
        return "error"
    if n % 25 == 3:
        return "review"
    if n % 10 == 1:
        return "blocked"
    return "clear"


def make_job(session: Session, store: BlobStore, *, items: int, folder: Path) -> int:
    """A finished job of `items` items over `folder` (which gets the matched items' files, as
    hard links of two photos, so regions can be boxed); returns its id."""
    (folder / "images").mkdir(parents=True)
    sources = []
    for name in ("coffee.png", "chelsea.png"):
        target = folder / f".{name}.jpg"
        Image.open(skimage_photo(name)).convert("RGB").save(target, "JPEG", quality=85)
        sources.append(target)
    holders = [make_rightsholder(session, "Harbor Studio"), make_rightsholder(session, "Northwind")]
    assets = [make_asset(session, store, photo="coffee.png", holder=holders[0]),
              make_asset(session, store, photo="chelsea.png", holder=holders[1])]
    job = ClearanceJob(status="finished", dataset_uri=str(folder), dataset_kind="folder",
                       dataset_options={}, use="ai_training", licensee="Lumen AI",
                       owner="bench", workers=1, batch_size=16, total_items=items,
                       done_items=items, dataset_digest="0" * 64, policy_versions=[],
                       catalog_snapshot={})
    session.add(job)
    session.flush()
    thumbs = [_thumb("coffee.png"), _thumb("chelsea.png")]
    rows = []
    for n in range(items):
        verdict = verdict_of(n)
        matches = []
        signals = []
        thumbnail = None
        if verdict in ("blocked", "review"):
            which = n % 2
            asset = assets[which]
            decision = "denied" if verdict == "blocked" else "review"
            matches = [{"asset_id": asset.id, "asset_sha256": asset.sha256,
                        "signal": "sift" if n % 3 else "pdq", "distance": 0.3 if n % 3 else 28,
                        "confidence": 0.8, "region": [40, 30, 200, 150], "time_s": None,
                        "transform": "crop", "decision": decision,
                        "explanation": f"{decision} by harbor-lumen#grants[{which}]",
                        "rule": decision, "decided_by": f"harbor-lumen#grants[{which}]"}]
            thumbnail = thumbs[which]
            os.link(sources[which], folder / "images" / f"{n:06d}.jpg")
        elif n % 97 == 5:
            signals = [{"signal": "tdmrep", "value": "tdm:reservation=1",
                        "permission": "notAllowed"}]
        rows.append({"job_id": job.id, "item_key": f"images/{n:06d}.jpg", "seq": n,
                     "path": str(folder / "images" / f"{n:06d}.jpg"),
                     "sha256": f"{n:064x}", "size_bytes": 1000, "machine_verdict": verdict,
                     "verdict": verdict, "matches": matches, "signals": signals,
                     "error": "truncated JPEG" if verdict == "error" else None,
                     "thumbnail": thumbnail})
    for start in range(0, len(rows), 5000):
        session.execute(insert(ClearanceItem), rows[start:start + 5000])
    session.flush()
    return job.id
