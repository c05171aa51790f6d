"""Matching at catalog scale: every figure beside a baseline measured in the same run.

Data: `bench/prepare_catalog.py --out DIR --assets N` (real pictures from Debian packages, then
game-like scenes; 1-2 MP JPEG queries, 95% unrelated). Nothing large is committed.

1. Scale curve: the catalog grows in steps (e.g. 1,000 then 10,000 assets) in one SQLite home.
   Per step: import rate (as `clearhouse assets import --workers 2`: fingerprints computed in 2
   worker processes ahead of each file's transaction; assets/s), index sync time
   (the step's rows appended as segments), then in a fresh process: RSS of a loaded Matcher and
   its in-memory bytes per asset, ms per query (one thread) for unrelated items and for related
   ones, recall of the related ones and false matches. Baseline, same step, same process: the
   same stages with every index exact (flat binary search; `binary.FLAT_MAX_CODES` unbounded).
2. Throughput against the decode limit, at the largest step: items/s of a whole clearance job
   (`clear_dataset`, default settings, 1 process then 2 workers) divided by items/s of Pillow
   draft-decoding the same files alone in one process.
3. Hash lookups at 1M / 3M / 10M 256-bit codes (PDQ-sized, random): the IVF index against the
   exact flat index: batched lookups/s on 2 threads, range-search recall at distance <= 31,
   memory.

Run: .venv/bin/python bench/bench_scale.py --data DIR [--steps 1000,10000] [--queries 400]
     [--baseline-queries 40,40,4] [--keep-steps DIR] [--skip-clearance]
     [--hash-sizes 1000000,3000000,10000000]
Again, later, the same queries on the kept steps side by side (alternating rounds):
     .venv/bin/python bench/bench_scale.py --data DIR --requery DIR/step-1000 DIR/step-10000 HOME
and the throughput alone on a home: --data DIR --home HOME --throughput-only --hash-sizes ""
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMPORT_CHUNK = 5000


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- 1. the scale curve ----------------------------------------------------------------------

def import_step(home: Path, files: list[Path], workers: int) -> dict[str, float]:
    """Import the files as `clearhouse assets import --workers N` does (features computed in
    worker processes ahead of each file's own register-and-store transaction), then sync the
    index."""

    from registry.catalog import BlobStore
    from registry.catalog.importer import ImportOptions
    from registry.db import make_engine, make_session_factory, migrate
    from registry.fingerprint import sync_index
    from registry.fingerprint.service import import_prepared, prepare_features

    url = f"sqlite:///{home / 'catalog.db'}"
    migrate(url)
    engine = make_engine(url)
    store = BlobStore(home / "blobs")
    factory = make_session_factory(engine)
    options = ImportOptions(rightsholder="Bench Studio")
    import_s = 0.0
    errors = 0
    # In chunks of files: a stopped run resumes (already imported files come back "existing").
    for first in range(0, len(files), IMPORT_CHUNK):
        chunk = files[first:first + IMPORT_CHUNK]
        started = time.perf_counter()
        prepared = prepare_features(chunk, workers=workers, max_bytes=options.max_bytes,
                                    max_pixels=options.max_pixels)
        for path, ready in zip(chunk, prepared, strict=True):
            result = import_prepared(factory, store, path, options, ready)
            errors += result.status == "error"
        import_s += time.perf_counter() - started
        print(f"  imported {first + len(chunk)}/{len(files)} "
              f"({(first + len(chunk)) / import_s:.1f} assets/s)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with factory() as session:
        sync_index(session, home / "index")
    synced = time.perf_counter()
    engine.dispose()
    return {"assets": len(files), "import_s": import_s, "sync_s": synced - started,
            "assets_per_s": len(files) / max(import_s, 1e-9), "errors": errors}


def snapshot(home: Path, dest: Path) -> None:
    """A copy of the home's database and index as they are now (index files hard-linked:
    segments are never changed once written, the manifest is replaced, not rewritten), to
    query this step again later beside the others."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(home / "catalog.db", dest / "catalog.db")
    shutil.rmtree(dest / "index", ignore_errors=True)
    subprocess.run(["cp", "-al", str(home / "index"), str(dest / "index")], check=True)


def imported_count(home: Path) -> int:
    if not (home / "catalog.db").exists():
        return 0
    from registry.catalog.models import Asset
    from registry.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{home / 'catalog.db'}")
    with make_session_factory(engine)() as session:
        count = session.query(Asset).count()
    engine.dispose()
    return count


def query_step(home: Path, queries: list[tuple[Path, int, str]], exact: bool) -> dict[str, float]:
    """In this (fresh) process: load the Matcher, time every query on one thread."""
    import cv2
    import faiss

    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)
    from registry.fingerprint.stages import binary

    if exact:
        binary.FLAT_MAX_CODES = 1 << 62
    before = rss_mib()
    from registry.catalog.models import Asset
    from registry.db import make_engine, make_session_factory
    from registry.fingerprint import Matcher

    engine = make_engine(f"sqlite:///{home / 'catalog.db'}")
    with make_session_factory(engine)() as session:
        if exact:  # the baseline builds its own exact copy of the index
            index_dir = home / "index-exact"
            Matcher.load(session, index_dir=index_dir)  # sync (flat everywhere)
        else:
            index_dir = home / "index"
        names = {a.id: a.original_name for a in session.query(Asset)}
    t0 = time.perf_counter()
    matcher = Matcher.open(index_dir)
    load_s = time.perf_counter() - t0
    loaded = rss_mib()
    times: dict[int, list[float]] = {0: [], 1: []}
    found = false = errors = 0
    detail: list[dict[str, object]] = []
    for path, related, catalog_file in queries:
        t0 = time.perf_counter()
        result = matcher.match_file(path, name=str(path))
        times[related].append(time.perf_counter() - t0)
        errors += result.error is not None
        if result.error:
            print(result.error, file=sys.stderr)
        got = [Path(names.get(m.asset_id) or "").name for m in result.matches]
        if got:  # which files, to judge them against the data's sources (shared tiles, sprites)
            detail.append({"query": path.name, "expected": catalog_file, "got": got[:5]})
        if related:
            found += bool(got) and got[0] == catalog_file
            false += sum(1 for g in got if g != catalog_file)
        else:
            false += len(got)
    memory = matcher.memory_bytes()
    assets = matcher.asset_count
    return {
        "assets": assets, "load_s": load_s, "rss_mib": loaded - before,
        "index_bytes_per_asset": sum(memory.values()) / max(assets, 1),
        "memory_by_stage": memory,
        "ms_unrelated": 1000 * float(np.mean(times[0])) if times[0] else 0.0,
        "ms_related": 1000 * float(np.mean(times[1])) if times[1] else 0.0,
        "recall": found / max(1, len(times[1])), "related": len(times[1]),
        "unrelated": len(times[0]), "false_matches": false, "errors": errors,
        "matched": detail,
    }


def read_queries(data: Path, limit: int) -> list[tuple[Path, int, str]]:
    with open(data / "queries.csv") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    return [(data / "queries" / r["file"], int(r["related"]), r["catalog_file"] or "")
            for r in rows]


def run_child(args: list[str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def pdq_recall(home: Path, queries: list[tuple[Path, int, str]], radius: int = 31
               ) -> dict[str, float]:
    """Range-search recall of the PDQ stage's index (as built for this catalog) against an exact
    flat index of the same hashes, for the real query windows' probes (and, since unrelated
    queries rarely come within 31 bits, for catalog hashes with 0-30 bits flipped)."""
    import faiss
    from sqlalchemy import select

    from registry.db import make_engine, make_session_factory
    from registry.fingerprint.matcher import prepare
    from registry.fingerprint.models import Fingerprint
    from registry.fingerprint.pdq import Pdq
    from registry.fingerprint.stages import binary
    from registry.media import load_image

    faiss.omp_set_num_threads(1)
    engine = make_engine(f"sqlite:///{home / 'catalog.db'}")
    with make_session_factory(engine)() as session:
        rows = session.execute(select(Fingerprint.hash).where(
            Fingerprint.signal == Pdq.name,
            Fingerprint.quality >= Pdq.quality_threshold)).all()
    engine.dispose()
    codes = np.frombuffer(b"".join(bytes(r[0]) for r in rows), np.uint8).reshape(-1, 32)
    probes = []
    for path, _, _ in queries:
        image = load_image(path.read_bytes(), name=path.name, max_bytes=1 << 30,
                           max_pixels=1 << 30, draft_size=(384, 384))
        for window in prepare(image).windows:
            probes += [h.bits for h in Pdq.compute_dihedral(window.image)]
    rng = np.random.default_rng(2)
    near = codes[rng.integers(0, len(codes), 2000)].copy()
    for row, flips in zip(near, rng.integers(0, 31, len(near)), strict=True):
        for bit in rng.choice(256, int(flips), replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    q = np.concatenate([np.frombuffer(b"".join(probes), np.uint8).reshape(-1, 32), near])
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    ours = binary.build(codes)
    t0 = time.perf_counter()
    lims0, _, ids0 = flat.range_search(q, radius + 1)
    flat_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lims1, _, ids1 = ours.range_search(q, radius + 1)
    ours_s = time.perf_counter() - t0
    hits, total = _range_hits((lims0, ids0), (lims1, ids1), len(q))
    return {"pdq_hashes": len(codes), "probes": len(q), "true_pairs": total,
            "recall": hits / max(total, 1), "flat_ms_per_probe": 1000 * flat_s / len(q),
            "ours_ms_per_probe": 1000 * ours_s / len(q),
            "index": type(ours).__name__}


# --- 2. throughput against decoding -----------------------------------------------------------

def decode_rate(files: list[Path]) -> float:
    from PIL import Image

    started = time.perf_counter()
    for path in files:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.draft("RGB", (384, 384))
            im.load()
    return len(files) / (time.perf_counter() - started)


def clearance_rate(home: Path, folder: Path, workers: int) -> float:
    from registry.clearance import clear_dataset
    from registry.db import make_engine, make_session_factory
    from registry.policy import load_policies

    engine = make_engine(f"sqlite:///{home / 'catalog.db'}")
    factory = make_session_factory(engine)
    policies = load_policies(ROOT / "policies")
    started = time.perf_counter()
    done = clear_dataset(
        factory, folder, use="ai_training", licensee="internal-ml", owner="bench",
        policies=policies, database_url=f"sqlite:///{home / 'catalog.db'}",
        index_dir=home / "index", workers=workers, allowed_roots=[folder.parent])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return sum(done.summary.values()) / elapsed


# --- 3. hash lookups at 10M -------------------------------------------------------------------

def _range_hits(truth: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray],
                queries: int) -> tuple[int, int]:
    """(pairs the exact range search found, how many of them `got` found too), from two
    (lims, ids) range-search results over the same queries."""
    lims0, ids0 = truth
    lims1, ids1 = got
    hits = total = 0
    for i in range(queries):
        want = set(ids0[lims0[i]:lims0[i + 1]].tolist())
        total += len(want)
        hits += len(want & set(ids1[lims1[i]:lims1[i + 1]].tolist()))
    return hits, total


def _recall(truth: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray],
            queries: int) -> float:
    hits, total = _range_hits(truth, got, queries)
    return hits / max(total, 1)


def hash_lookups(sizes: list[int], queries: int = 4000) -> list[dict[str, float]]:
    """Flat (exact), our IVF, and multi-index hashing (`binary.MIH_*`: 10 substrings of 24 bits,
    buckets one bit away) on random PDQ-sized codes: batched lookups/s on 2 threads, range
    recall at <= 31 bits against the flat index, memory."""
    import faiss

    from registry.fingerprint.stages import binary

    faiss.omp_set_num_threads(2)
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        q = codes[rng.integers(0, n, queries)].copy()
        flips = rng.integers(0, 31, queries)
        for i in range(queries):  # a near copy: 0-30 bits away from a catalog code
            for b in rng.choice(256, int(flips[i]), replace=False):
                q[i, b // 8] ^= 1 << (b % 8)
        flat = faiss.IndexBinaryFlat(256)
        flat.add(codes)
        t0 = time.perf_counter()
        lims0, _, ids0 = flat.range_search(q, 32)
        flat_rate = queries / (time.perf_counter() - t0)
        del flat
        t0 = time.perf_counter()
        ivf = binary.build(codes, flat_max=0)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lims1, _, ids1 = ivf.range_search(q, 32)
        ivf_rate = queries / (time.perf_counter() - t0)
        row = {"codes": n, "flat_per_s": flat_rate, "ivf_per_s": ivf_rate,
               "recall": _recall((lims0, ids0), (lims1, ids1), queries), "build_s": build_s,
               "nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe),
               "flat_mib": n * 32 / 2**20, "ivf_mib": binary.memory_bytes(ivf) / 2**20}
        del ivf
        before = rss_mib()
        t0 = time.perf_counter()
        mih = binary.build(codes, flat_max=0, mih_above=0)  # what the hash stages build
        row["mih_build_s"] = time.perf_counter() - t0
        row["mih_mib"] = rss_mib() - before  # codes + hash tables (RSS growth)
        t0 = time.perf_counter()
        lims2, _, ids2 = mih.range_search(q, 32)
        row["mih_per_s"] = queries / (time.perf_counter() - t0)
        row["mih_recall"] = _recall((lims0, ids0), (lims2, ids2), queries)
        out.append(row)
        print(json.dumps(row), flush=True)
        del mih, codes
    return out


def requery(homes: list[Path], data: Path, queries: int, rounds: int) -> None:
    """The same queries against several homes (one per catalog size), in alternating rounds
    (A B C, C B A, ...) so that a change of the machine's load reaches every home alike."""
    per_home: dict[Path, list[dict[str, object]]] = {h: [] for h in homes}
    for r in range(rounds):
        for home in (homes if r % 2 == 0 else list(reversed(homes))):
            row = run_child(["--child-query", str(home), str(data), "ours",
                             "--queries", str(queries)])
            per_home[home].append(row)
            print(json.dumps({"home": str(home), "round": r, **row}), flush=True)
    for home, rows in per_home.items():
        print(json.dumps({"home": str(home), "assets": rows[0]["assets"],
                          "ms_unrelated": [round(float(str(r["ms_unrelated"])), 1) for r in rows],
                          "ms_related": [round(float(str(r["ms_related"])), 1) for r in rows],
                          "false_matches": [r["false_matches"] for r in rows]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--steps", default="1000,10000")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--baseline-queries", default="60",
                        help="queries for the exact baseline (its cost grows with the catalog):"
                        " one number, or one per step (e.g. 40,40,4)")
    parser.add_argument("--keep-steps", type=Path,
                        help="snapshot the home after each step into DIR/step-N")
    parser.add_argument("--requery", type=Path, nargs="+",
                        help="only query these homes again (snapshots), in alternating rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--throughput-only", action="store_true",
                        help="with --home: only the clearance throughput on that catalog")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-clearance", action="store_true")
    parser.add_argument("--home", type=Path, help="reuse this bench home (its assets stay)")
    parser.add_argument("--hash-sizes", default="1000000,3000000,10000000")
    parser.add_argument("--child-query", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_query:
        home, data, mode = args.child_query
        print(json.dumps(query_step(Path(home), read_queries(Path(data), args.queries),
                                    exact=mode == "exact")))
        return
    results: dict[str, object] = {"steps": [], "hash": [], "throughput": None}
    if args.requery:
        requery(args.requery, args.data, args.queries, args.rounds)
        return
    if args.data:
        with open(args.data / "catalog.csv") as fh:
            catalog = [args.data / "catalog" / r["file"] for r in csv.DictReader(fh)]
        home = args.home or Path(tempfile.mkdtemp(prefix="bench-scale-"))
        done = imported_count(home)
        steps = [] if args.throughput_only else [int(s) for s in args.steps.split(",")]
        baseline = [int(b) for b in args.baseline_queries.split(",")]
        for number, step in enumerate(steps):
            base_q = baseline[min(number, len(baseline) - 1)]
            imported = import_step(home, catalog[done:step], args.workers)
            done = max(done, step)
            if args.keep_steps and number < len(steps) - 1:
                snapshot(home, args.keep_steps / f"step-{step}")
            ours = run_child(["--child-query", str(home), str(args.data), "ours",
                              "--queries", str(args.queries)])
            # 0: no exact baseline at this step (at 100,000 assets each exact query takes
            # minutes and its index ~10 GB)
            flat = run_child(["--child-query", str(home), str(args.data), "exact",
                              "--queries", str(base_q)]) if base_q else None
            if 0 < base_q < args.queries:  # ours again on the baseline's queries
                ours["same_queries"] = run_child([
                    "--child-query", str(home), str(args.data), "ours",
                    "--queries", str(base_q)])
            row = {"step": step, "import": imported, "ours": ours, "exact": flat,
                   "pdq_index": pdq_recall(home, read_queries(args.data, args.queries))}
            results["steps"].append(row)  # type: ignore[attr-defined]
            print(json.dumps(row), flush=True)
        if not args.skip_clearance:
            folder = args.data / "queries"
            files = sorted(folder.glob("*.jpg"))
            decode = decode_rate(files)
            one = clearance_rate(home, folder, 1)
            two = clearance_rate(home, folder, 2)
            decode_again = decode_rate(files)
            results["throughput"] = {
                "items": len(files), "decode_per_s": (decode + decode_again) / 2,
                "clear_1_per_s": one, "clear_2_per_s": two,
                "ratio_1": one / ((decode + decode_again) / 2),
                "ratio_2": two / ((decode + decode_again) / 2)}
            print(json.dumps(results["throughput"]), flush=True)
    if args.hash_sizes:
        for row in hash_lookups([int(s) for s in args.hash_sizes.split(",")]):
            results["hash"].append(row)  # type: ignore[attr-defined]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
