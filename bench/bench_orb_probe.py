"""The local stage's ORB probe on one real segment: lists and tree cells scanned per query code.

Reads a segment as the local stage does (`binary.read`), takes the bench's real query pictures'
ORB descriptors (800 each), and for each (lists, cells) setting prints the CPU ms per probe (one
thread; of it the coarse step, finding each code's lists) and how many of the voted candidates
(the local stage's own vote and selection rules) it keeps of those a 16-list probe finds, the
baseline of the same run. For a vocabulary-tree segment (above 4M codes, `binary.coarse_tree`).

Run: .venv/bin/python bench/bench_orb_probe.py --segment HOME/index/seg/local-XXXX --data DIR
     [--queries 40] [--settings 16:8,4:8,2:8,2:4,4:4,2:2]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from bench_orb_candidates import segment_inputs, segment_parser, voted

    parser = segment_parser(__doc__.splitlines()[0])
    parser.add_argument("--settings", default="16:8,4:8,2:8,2:4,4:4,2:2")
    args = parser.parse_args()
    import faiss

    from registry.fingerprint.stages import binary, local

    index = binary.read(args.segment / "index.faiss")
    if not binary.coarse_tree(index):
        raise SystemExit(f"{args.segment}: not a vocabulary-tree segment")
    owner, sets, queries = segment_inputs(args.segment, args.data, args.queries)
    faiss.omp_set_num_threads(1)
    cells_index = faiss.downcast_IndexBinary(index.quantizer)
    baseline: list[set[int]] | None = None
    for setting in args.settings.split(","):
        lists, cells = (int(v) for v in setting.split(":"))
        index.nprobe, cells_index.nprobe = lists, cells
        started = time.process_time()
        got = [voted(*index.search(d, local.VOTE_NEIGHBOURS), owner, sets) for d in queries]
        ms = 1000 * (time.process_time() - started) / len(queries)
        started = time.process_time()
        for d in queries:
            index.quantizer.search(d, lists)
        coarse = 1000 * (time.process_time() - started) / len(queries)
        baseline = baseline or got
        print(json.dumps({
            "lists": lists, "cells": cells, "ms_per_probe": round(ms, 2),
            "coarse_ms": round(coarse, 2),
            "kept": sum(len(a & b) for a, b in zip(baseline, got, strict=True)),
            "of_first_setting": sum(map(len, baseline)), "codes": int(index.ntotal),
            "lists_total": int(index.nlist)}), flush=True)


if __name__ == "__main__":
    main()
