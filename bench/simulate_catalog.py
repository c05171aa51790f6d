"""A simulated large catalog for memory measurements: N copies of a real bench catalog.

Fingerprinting 100,000 real pictures takes hours on two shared cores, but what a loaded Matcher
(or a Ray actor holding one) keeps in memory depends only on how many hashes and keypoints its
segments hold. This script takes a `bench_scale.py` home (a SQLite catalog of real art, its
fingerprints and its synced index) and writes a home with `--copies` N copies of it:

* the database: every asset, fingerprint and keypoint-set row again N-1 times, with ids shifted
  past the originals and a derived sha256 per copy (keypoint-set blobs are not copied: nothing
  reads them once the index holds them, and they are 6 GB at 100,000 assets);
* the index: each stage's segments again N-1 times, their asset ids (and, for stage 0, their
  sha256) shifted the same way, large files hard-linked; the manifest names every copy with the
  row ranges of its database rows, so `sync_index` finds it current and rebuilds nothing.

The result is a catalog of N x the assets whose in-memory index has exactly N x the codes of
the real one. It is for memory only: matching against it finds N identical copies, and a real
catalog of that size would have one merged segment per stage rather than N (queries search every
segment, so its query cost is not the real catalog's either).

Run: .venv/bin/python bench/simulate_catalog.py --home HOME --copies 10 --out OUT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The table each stage's segment row ranges count (stage 0's rows are asset ids).
_ROW_TABLE = {"exact": "assets", "local": "keypoint_sets"}


def _derived(sha_hex: str, copy: int) -> str:
    return hashlib.sha256(f"{sha_hex}:{copy}".encode()).hexdigest()


def copy_database(src: Path, dst: Path, copies: int) -> dict[str, int]:
    """Copy the catalog and append the row copies; returns the original max id per table."""
    shutil.copy(src, dst)
    db = sqlite3.connect(dst)
    db.create_function("derived", 2, _derived, deterministic=True)
    top = {t: db.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]
           for t in ("assets", "fingerprints", "keypoint_sets")}
    a, f, k = top["assets"], top["fingerprints"], top["keypoint_sets"]
    with db:
        for n in range(1, copies):
            db.execute(
                "INSERT INTO assets (id, kind, title, sha256, size_bytes, width, height,"
                " duration_s, media_type, blob_path, original_name, rightsholder_id,"
                " franchise_id, created_at) SELECT id + ?, kind, title, derived(sha256, ?),"
                " size_bytes, width, height, duration_s, media_type, blob_path, original_name,"
                " rightsholder_id, franchise_id, created_at FROM assets WHERE id <= ?",
                (n * a, n, a))
            db.execute(
                "INSERT INTO fingerprints (id, asset_id, signal, version, region, hash, quality,"
                " x, y, w, h, time_s, created_at) SELECT id + ?, asset_id + ?, signal, version,"
                " region, hash, quality, x, y, w, h, time_s, created_at FROM fingerprints"
                " WHERE id <= ?", (n * f, n * a, f))
            db.execute(
                "INSERT INTO keypoint_sets (id, asset_id, version, count, time_s, data,"
                " created_at) SELECT id + ?, asset_id + ?, version, count, time_s, X'',"
                " created_at FROM keypoint_sets WHERE id <= ?", (n * k, n * a, k))
    db.close()
    return top


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


def _shifted_segment(stage: str, src: Path, dst: Path, copy: int, assets: int) -> None:
    dst.mkdir(parents=True)
    shift = copy * assets
    for path in src.iterdir():
        target = dst / path.name
        if stage == "local" and path.name == "sets.npz":
            with np.load(path) as z:
                arrays = {name: z[name] for name in z.files}
            arrays["row_asset"] = arrays["row_asset"] + shift
            np.savez(target, **arrays)
        elif stage.startswith("hash.") and path.name == "meta.npz":
            with np.load(path) as z:
                arrays = {name: z[name] for name in z.files}
            arrays["asset_ids"] = arrays["asset_ids"] + shift
            np.savez(target, **arrays)
        elif stage == "exact" and path.name == "ids.npy":
            np.save(target, np.load(path) + shift)
        elif stage == "exact" and path.name == "sha256.npy":
            digests = np.load(path)
            np.save(target, np.array([bytes.fromhex(_derived(bytes(d).hex(), copy))
                                      for d in digests], dtype="S32"))
        else:
            _link_or_copy(path, target)


def copy_index(src: Path, dst: Path, copies: int, top: dict[str, int]) -> dict[str, int]:
    manifest = json.loads((src / "manifest.json").read_text())
    (dst / "seg").mkdir(parents=True)
    counts: dict[str, int] = {}
    for stage, entry in manifest["stages"].items():
        rows_top = top[_ROW_TABLE.get(stage, "fingerprints")]
        originals = entry["segments"]
        segments = []
        for n in range(copies):
            for seg in originals:
                name = Path(seg["dir"]).name if n == 0 else f"{Path(seg['dir']).name}-copy{n}"
                if n == 0:
                    shutil.copytree(src / seg["dir"], dst / "seg" / name,
                                    copy_function=_link_or_copy)
                else:
                    _shifted_segment(stage, src / seg["dir"], dst / "seg" / name, n,
                                     top["assets"])
                segments.append({"dir": f"seg/{name}", "after": seg["after"] + n * rows_top,
                                 "upto": seg["upto"] + n * rows_top, "rows": seg["rows"]})
        entry["segments"] = segments
        counts[stage] = len(segments)
    manifest["serial"] = int(manifest.get("serial", 0)) + 1
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: remove it first")
    args.out.mkdir(parents=True)
    top = copy_database(args.home / "catalog.db", args.out / "catalog.db", args.copies)
    counts = copy_index(args.home / "index", args.out / "index", args.copies, top)

    from registry.db import make_engine, make_session_factory
    from registry.fingerprint.index import is_fresh

    engine = make_engine(f"sqlite:///{args.out / 'catalog.db'}")
    with make_session_factory(engine)() as session:
        fresh = is_fresh(session, args.out / "index")
    engine.dispose()
    print(json.dumps({"assets": top["assets"] * args.copies, "segments": counts,
                      "index_current": fresh}))
    if not fresh:
        raise SystemExit("the simulated index does not match its database")


if __name__ == "__main__":
    main()
