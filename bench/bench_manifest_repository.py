"""Manifest repository lookups: the faiss index next to a plain scan of the stored hashes, same run.

The repository holds N manifests (default 20,000): 40 real signed outputs (real c2pa signing of
real photos and generated pictures) plus synthetic rows with random PDQ hashes and ISCC codes
(6 PDQ hashes + 1 ISCC per manifest, as signing writes them). Queries are the real outputs,
stripped (re-encoded to JPEG) and resized to 50%.

- baseline: read every stored PDQ hash from the database and compare in numpy (what a lookup
  without an index does: cost grows with the repository);
- ours: `find_by_content` through `ManifestIndex` (faiss binary range search, caught up
  incrementally), including ISCC and sha256 (end to end, with hashing the query);
- the index alone: faiss range search vs numpy over the same hashes already in memory.
Also: what the repository adds to signing (soft binding + fingerprints + record) per image.

    .venv/bin/python bench/bench_manifest_repository.py [--records 20000]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import select  # noqa: E402

from registry.db import make_engine, make_session_factory, migrate  # noqa: E402
from registry.provenance import ensure_studio_keys, sign_media  # noqa: E402
from registry.provenance.models import ManifestFingerprint, ManifestRecord  # noqa: E402
from registry.provenance.repository import (  # noqa: E402
    ManifestIndex,
    find_by_content,
    pdq_similarity,
)
from registry.provenance.service import sign_generated  # noqa: E402
from registry.provenance.softbinding import PDQ_ALG, query_fingerprints  # noqa: E402
from tests.photos import photo_paths  # noqa: E402
from tests.registry.provenance.test_recovery import _generated, _save  # noqa: E402


def _synthetic(session: object, count: int, rng: np.random.Generator) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    records = [ManifestRecord(
        manifest_id=f"urn:c2pa:bench-{i:08d}", signed_sha256=f"{i:064x}", media_type="image/png",
        store=b"x", store_sha256="0" * 64, studio="Bench", signer="CN=bench", signer_serial="1",
        signer_cert_sha256="0" * 64, actor="bench", training_source="studio_default",
        iscc=None) for i in range(count)]
    session.add_all(records)
    session.flush()
    rows = []
    for record in records:
        for region in ("full", "w80/centre", "w80/top-left", "w80/top-right", "w80/bottom-left",
                       "w80/bottom-right"):
            rows.append(ManifestFingerprint(record_id=record.id, alg=PDQ_ALG, region=region,
                                            value=rng.bytes(32), quality=100))
        rows.append(ManifestFingerprint(record_id=record.id, alg="io.iscc.v0", region="full",
                                        value=b"\x21\x00" + rng.bytes(8), quality=100))
    session.add_all(rows)
    session.flush()


def _scan(session: object, image: Image.Image) -> list[tuple[int, int]]:
    """Baseline: every stored PDQ hash from the database, compared in numpy."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    rows = session.execute(select(ManifestFingerprint.record_id, ManifestFingerprint.value)
                           .where(ManifestFingerprint.alg == PDQ_ALG)).all()
    table = np.frombuffer(b"".join(bytes(r.value) for r in rows), np.uint8).reshape(len(rows), 32)
    owners = np.array([r.record_id for r in rows])
    hits = []
    for probe in query_fingerprints(image):
        q = np.frombuffer(probe.value, np.uint8)
        dist = np.unpackbits(np.bitwise_xor(table, q), axis=1).sum(axis=1)
        hits += [(int(owners[i]), pdq_similarity(int(dist[i]))) for i in np.flatnonzero(dist <= 31)]
    return hits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    url = f"sqlite:///{work / 'bench.db'}"
    migrate(url)
    factory = make_session_factory(make_engine(url))
    keys = ensure_studio_keys(work / "keys")
    rng = np.random.default_rng(7)
    with factory() as session:
        sources = [p.read_bytes() for p in photo_paths()[:20]] + \
            [_save(_generated(i), "PNG") for i in range(20)]
        sign_times, registry_times, signed = [], [], []
        for i, data in enumerate(sources):
            start = time.perf_counter()
            sign_media(data, keys=keys, name=f"s{i}")
            sign_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = sign_generated(session, data, keys=keys, name=f"s{i}").signed
            registry_times.append(time.perf_counter() - start)
            signed.append((str(out.manifest_label), out.data))
        _synthetic(session, args.records - len(signed), rng)
        session.commit()
        queries = []
        for label, data in signed:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            image = image.resize((image.width // 2, image.height // 2))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=85)
            queries.append((label, buf.getvalue(), Image.open(buf).convert("RGB")))
        index = ManifestIndex()
        start = time.perf_counter()
        index.refresh(session)
        build_s = time.perf_counter() - start
        t_scan, t_ours, right = [], [], 0
        for label, data, image in queries:
            start = time.perf_counter()
            _scan(session, image)
            t_scan.append(time.perf_counter() - start)
            start = time.perf_counter()
            found = find_by_content(session, index, data, image=image)
            t_ours.append(time.perf_counter() - start)
            right += bool(found) and found[0].manifest_id == label
        # The index alone: faiss range search vs numpy over the same hashes held in memory.
        rows = session.execute(select(ManifestFingerprint.value)
                               .where(ManifestFingerprint.alg == PDQ_ALG)).all()
        table = np.frombuffer(b"".join(bytes(r.value) for r in rows), np.uint8).reshape(-1, 32)
        probes = [p.value for _, _, image in queries for p in query_fingerprints(image)]
        t_np, t_faiss = [], []
        for probe in probes:
            start = time.perf_counter()
            q = np.frombuffer(probe, np.uint8)
            np.flatnonzero(np.unpackbits(np.bitwise_xor(table, q), axis=1).sum(axis=1) <= 31)
            t_np.append(time.perf_counter() - start)
            start = time.perf_counter()
            index.search_pdq([probe], 31)
            t_faiss.append(time.perf_counter() - start)
    np_ms, faiss_ms = statistics.median(t_np) * 1000, statistics.median(t_faiss) * 1000
    scan_ms, ours_ms = statistics.median(t_scan) * 1000, statistics.median(t_ours) * 1000
    print(f"repository: {args.records} manifests ({7 * args.records} stored hashes); "
          f"index caught up in {build_s:.2f} s")
    print(f"lookup of a stripped, resized copy: scan {scan_ms:.1f} ms, ours {ours_ms:.1f} ms "
          f"(median over {len(queries)}): {scan_ms / ours_ms:.1f}x faster; "
          f"{right}/{len(queries)} recovered")
    print(f"PDQ lookup alone, {len(table)} hashes in memory: numpy {np_ms:.2f} ms, faiss "
          f"{faiss_ms:.3f} ms per hash: {np_ms / faiss_ms:.1f}x faster")
    sign_ms = statistics.median(sign_times) * 1000
    reg_ms = statistics.median(registry_times) * 1000
    print(f"signing per image: sign_media {sign_ms:.1f} ms, sign_generated with the repository "
          f"record {reg_ms:.1f} ms ({reg_ms / sign_ms:.2f}x)")


if __name__ == "__main__":
    main()
