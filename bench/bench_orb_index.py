"""The local stage's ORB index at the size of a 100,000-asset catalog, on one machine.

A 100,000-asset catalog holds about 72M ORB codes (two keypoint sets of up to 400 codes per
asset). Importing one takes hours, so this measures the index alone: the real ORB codes of a
bench home (`bench/bench_scale.py --keep-steps`, or its home) are grown to N codes by copies with
about `--flip-bits` random bits flipped (timing only: the copies break the ratio test), and each
index rule is built over them and searched with the real query pictures' ORB descriptors (800
per query, `k = VOTE_NEIGHBOURS`, one thread). Baseline, same run: the home's own segment (real
codes) with the same rule.

Per rule: lists, codes per list, build seconds (2 threads), index memory, CPU ms per
800-descriptor probe (and of it the coarse step), and the ratio against the real segment built
with the same coarse step. Rules: "tree" (the vocabulary tree, `binary.build(tree=True)`, at
most TREE_MAX_LISTS lists), "graph" (centroids in an HNSW graph, at most GRAPH_MAX_LISTS),
"capped" (a graph with at most MAX_LISTS), "cap=N" (a graph with at most N), "tree=N".

Run: .venv/bin/python bench/bench_orb_index.py --home HOME --data DIR [--codes 72000000]
     [--flip-bits 24] [--queries 60] [--rules tree,graph]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def real_codes(home: Path) -> np.ndarray:
    """Every ORB code of the home's local-stage segments (memory-mapped, concatenated)."""
    manifest = json.loads((home / "index" / "manifest.json").read_text())
    parts = [np.load(home / "index" / s["dir"] / "orb_d.npy", mmap_mode="r")
             for s in manifest["stages"]["local"]["segments"]]
    return np.concatenate(parts)


def grown(codes: np.ndarray, n: int, flip_bits: int, seed: int = 0) -> np.ndarray:
    """`n` codes: the real ones, then copies of them with about `flip_bits` bits flipped."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, codes.shape[1]), np.uint8)
    threshold = round(256 * flip_bits / (codes.shape[1] * 8))  # P(bit flipped) = flip/256
    chunk = 1_000_000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        source = codes[np.arange(start, stop) % len(codes)]
        if start >= len(codes):
            flips = rng.integers(0, 256, (stop - start, codes.shape[1] * 8), dtype=np.uint8)
            source = source ^ np.packbits(flips < threshold, axis=1)
        out[start:stop] = source
    return out


def query_descriptors(data: Path, count: int) -> list[np.ndarray]:
    from registry.fingerprint import keypoints
    from registry.fingerprint.features import decode_visible
    from registry.fingerprint.matcher import QUERY_DRAFT_SIZE, prepare

    with open(data / "queries.csv") as fh:
        rows = list(csv.DictReader(fh))[:count]
    out = []
    for r in rows:
        path = data / "queries" / r["file"]
        image, mask = decode_visible(path.read_bytes(), name=path.name,
                                     draft_size=QUERY_DRAFT_SIZE)
        out.append(keypoints.extract_orb(prepare(image, on_neutral=mask is not None).work,
                                         query=True).descriptors)
    return out


def probe_cost(index: object, queries: list[np.ndarray]) -> dict[str, float]:
    import faiss

    from registry.fingerprint.stages import local

    faiss.omp_set_num_threads(1)
    index.nprobe = local.ORB_TREE_PROBES  # type: ignore[attr-defined]
    k = local.VOTE_NEIGHBOURS
    started = time.process_time()
    for d in queries:
        index.search(d, k)  # type: ignore[attr-defined]
    total = time.process_time() - started
    started = time.process_time()
    for d in queries:
        index.quantizer.search(d, index.nprobe)  # type: ignore[attr-defined]
    coarse = time.process_time() - started
    return {"ms_per_probe": 1000 * total / len(queries),
            "coarse_ms": 1000 * coarse / len(queries)}


def measure(name: str, codes: np.ndarray, queries: list[np.ndarray], cap: int, *,
            tree: bool) -> dict[str, Any]:
    import faiss

    from registry.fingerprint.stages import binary, local

    if tree:
        binary.TREE_MAX_LISTS = cap
    else:
        binary.GRAPH_MAX_LISTS = cap
    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    index = binary.build(codes, graph=not tree, tree=tree,
                         per_list=local.ORB_TREE_CODES_PER_LIST)
    build_s = time.perf_counter() - started
    row: dict[str, Any] = {
        "rule": name, "codes": int(index.ntotal), "lists": int(index.nlist),
        "codes_per_list": round(index.ntotal / index.nlist), "build_s": round(build_s, 1),
        "memory_mib": round(binary.memory_bytes(index) / 2**20, 1)}
    row.update({k: round(v, 2) for k, v in probe_cost(index, queries).items()})
    del index
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--codes", type=int, default=72_000_000)
    parser.add_argument("--flip-bits", type=int, default=24)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rules", default="tree,graph")
    args = parser.parse_args()
    from registry.fingerprint.stages import binary

    queries = query_descriptors(args.data, args.queries)
    real = real_codes(args.home)
    caps = {"capped": binary.MAX_LISTS, "graph": binary.GRAPH_MAX_LISTS,
            "tree": binary.TREE_MAX_LISTS}
    rules = [(name, name.startswith("tree"),
              int(name.split("=")[1]) if "=" in name else caps[name])
             for name in args.rules.split(",")]
    results = []
    # Baselines: the real codes with each coarse step (at this size every cap gives the same
    # lists).
    base = {tree: measure(f"real codes, {'tree' if tree else 'graph'}", np.ascontiguousarray(real),
                          queries, binary.TREE_MAX_LISTS if tree else binary.GRAPH_MAX_LISTS,
                          tree=tree)
            for tree in sorted({tree for _, tree, _ in rules})}
    for row in base.values():
        print(json.dumps(row), flush=True)
    codes = grown(real, args.codes, args.flip_bits)
    for name, tree, cap in rules:
        row = measure(name, codes, queries, cap, tree=tree)
        row["x_real"] = round(float(row["ms_per_probe"]) / float(base[tree]["ms_per_probe"]), 2)
        results.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"baseline": list(base.values()), "rules": results}))


if __name__ == "__main__":
    main()
