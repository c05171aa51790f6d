"""Which voted candidates the local stage's approximate ORB index keeps, against the exact index.

Per query (the bench's 1-2 MP JPEGs, 800 ORB descriptors each), the local stage votes for
catalog keypoint sets by the ratio test on each descriptor's 4 nearest codes, and verifies the
3 best-voted sets with >= 5 votes. This builds each coarse-step rule over one segment's real ORB
codes (`binary.build`: "graph", the centroids in an HNSW graph; "tree", in a vocabulary tree),
and counts how many of the exact index's (`IndexBinaryFlat`) candidates each keeps, with its CPU
ms per probe (one thread) and build time. The exact search is the baseline of the same run.

Run: .venv/bin/python bench/bench_orb_candidates.py --segment HOME/index/seg/local-XXXX \
     --data DIR [--queries 40] [--rules graph,tree]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def voted(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> set[int]:
    """The sets the local stage would verify (its own vote and selection rules)."""
    from registry.fingerprint.stages import local

    return set(local.best_voted(local.ratio_votes(dist, ids, owner, sets)))


def segment_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of the benches over one segment's real codes and the bench's queries."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--segment", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=40)
    return parser


def segment_inputs(segment: Path, data: Path, count: int
                   ) -> tuple[np.ndarray, int, list[np.ndarray]]:
    """The segment's code owners (keypoint sets), their number, and `count` bench queries'
    ORB descriptors."""
    from bench_orb_index import query_descriptors

    owner = np.load(segment / "owner.npy")
    return owner, int(owner.max()) + 1, query_descriptors(data, count)


def main() -> None:
    parser = segment_parser(__doc__.splitlines()[0])
    parser.add_argument("--rules", default="graph,tree")
    args = parser.parse_args()
    import faiss

    from registry.fingerprint.stages import binary, local

    codes = np.load(args.segment / "orb_d.npy")
    owner, sets, queries = segment_inputs(args.segment, args.data, args.queries)
    k = local.VOTE_NEIGHBOURS
    faiss.omp_set_num_threads(2)  # the exact search and the builds; probes are timed on one
    flat = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    flat.add(codes)
    started = time.perf_counter()
    exact = [voted(*flat.search(d, k), owner, sets) for d in queries]
    print(json.dumps({"rule": "exact", "wall_ms_per_probe_2_threads": round(
        1000 * (time.perf_counter() - started) / len(queries), 1),
        "candidates": sum(map(len, exact))}), flush=True)
    del flat
    for rule in args.rules.split(","):
        started = time.perf_counter()
        index = binary.build(codes, graph=rule == "graph", tree=rule == "tree",
                             per_list=local.ORB_TREE_CODES_PER_LIST)
        build_s = time.perf_counter() - started
        index.nprobe = local.ORB_TREE_PROBES
        faiss.omp_set_num_threads(1)
        started = time.process_time()
        got = [voted(*index.search(d, k), owner, sets) for d in queries]
        ms = 1000 * (time.process_time() - started) / len(queries)
        print(json.dumps({"rule": rule, "lists": int(index.nlist), "build_s": round(build_s, 1),
                          "ms_per_probe": round(ms, 2),
                          "kept": sum(len(e & g) for e, g in zip(exact, got, strict=True)),
                          "of": sum(map(len, exact))}), flush=True)
        faiss.omp_set_num_threads(2)
        del index


if __name__ == "__main__":
    main()
