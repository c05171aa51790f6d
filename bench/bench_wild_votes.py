"""Where the right asset stands in stage 2's vote for the wild recall test's queries, against a
catalog with fillers: which candidate rule finds it among the few sets that are verified.

Root: a working copy kept by `bench/bench_fillers.py --keep-work` (a bench home with the wild
test's catalog registered in it), or any catalog root holding the test's pictures. For every
wild transform of every catalog picture (the whole query; collage cells and page windows aside)
the query's ORB descriptors are searched once per segment with VOTE_K neighbours at each
`--probes` setting (lists scanned per query code), and each rule counts votes per keypoint set;
the sets it would verify are `local.best_voted` (the 3 best-voted with >= MIN_VOTES). The landed
rule is the stage's own (`_LocalIndex.candidates`: the shortlist ranked by consistent votes).
Per rule: how many queries have their right asset among the verified candidates, its median
rank, and the score of the best set on the distractors' queries (votes, or consistent votes for
the landed rule: what an unrelated item would send to verification).

Run: .venv/bin/python bench/bench_wild_votes.py --root WORK/wild-fillers [--probes 4,16]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOTE_K = 16


Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def rules() -> dict[str, Rule]:
    from registry.fingerprint import keypoints
    from registry.fingerprint.stages import local

    def ratio(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> np.ndarray:
        k = local.VOTE_NEIGHBOURS
        return local.ratio_votes(dist[:, :k], ids[:, :k], owner, sets)

    def nearest(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> np.ndarray:
        ok = (ids[:, 0] >= 0) & (dist[:, 0] <= local.ORB_MAX_DISTANCE)
        return np.bincount(owner[ids[ok, 0]], minlength=sets)

    def soft(slack: int) -> Rule:
        def vote(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> np.ndarray:
            """Each descriptor votes once for every set among its neighbours within `slack`
            bits of its nearest (and within ORB_MAX_DISTANCE), 1/(sets it names) each."""
            owners = owner[np.clip(ids, 0, None)]
            ok = (ids >= 0) & (dist <= np.minimum(dist[:, :1] + slack, local.ORB_MAX_DISTANCE))
            votes = np.zeros(sets, np.float64)
            for row in range(len(ids)):
                named = np.unique(owners[row][ok[row]])
                if len(named):
                    votes[named] += 1.0 / len(named)
            return votes
        return vote

    def loose(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> np.ndarray:
        saved = keypoints.ORB_RATIO
        keypoints.ORB_RATIO = 0.9
        try:
            return ratio(dist, ids, owner, sets)
        finally:
            keypoints.ORB_RATIO = saved

    return {"votes alone (3 best, >= 5 votes)": ratio, "ratio 0.9": loose,
            "nearest, no ratio": nearest, "soft +4": soft(4), "soft +8": soft(8)}


GEOMETRY = "shortlist ranked by geometry (landed)"


def geometry_scores(index: Any, query: Any) -> tuple[set[int], dict[int, float]]:
    """The stage's own rule (`_LocalIndex.candidates`): the assets it verifies, and per
    shortlisted asset its consistent votes (plus votes / 1000, to break ties)."""
    chosen = {int(c.segment.row_asset[c.segment.set_row[c.set_no]])
              for c in index.candidates(query)}
    scores: dict[int, float] = {}
    for segment in index.segments:
        if segment.index.ntotal == 0:
            continue
        for c in segment.shortlist(query, 1):
            asset = int(segment.row_asset[segment.set_row[c.set_no]])
            scores[asset] = max(scores.get(asset, 0.0), c.consistent + c.votes / 1000)
    return chosen, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--probes", default="4,16")
    parser.add_argument("--only", help="comma-separated transforms")
    args = parser.parse_args()

    import faiss

    from registry.fingerprint import keypoints
    from registry.fingerprint.matcher import prepare
    from registry.fingerprint.stages import local
    from tests.registry.fingerprint import test_recall_wild as wild
    from tests.registry.fingerprint.helpers import photo_catalog
    from tests.registry.fingerprint.transforms_wild import (
        ALPHA_ONLY,
        has_alpha,
        open_picture,
        rng_for,
    )

    faiss.omp_set_num_threads(1)
    ids, state = photo_catalog(args.root, wild.catalog_pictures())
    matcher = pickle.loads(state)
    index = matcher._indexes["local"]
    table = wild.transforms()
    names = args.only.split(",") if args.only else wild.TRANSFORM_NAMES
    the_rules = rules()
    probes = [int(p) for p in args.probes.split(",")]
    # per (probes, rule): found among candidates, ranks, best wrong votes on distractors
    found: dict[tuple[int, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    ranks: dict[tuple[int, str], list[int]] = defaultdict(list)
    noise: dict[tuple[int, str], list[float]] = defaultdict(list)
    total = 0
    for name in names:
        for path in wild.catalog_pictures() + wild.distractor_pictures():
            picture = open_picture(path)
            if name in ALPHA_ONLY and not has_alpha(picture):
                continue
            target = ids.get(path)
            probe = prepare(table[name](picture, rng_for(name, path.name)))
            side = keypoints.ORB_SOFT_QUERY_SIDE_PX if keypoints.is_soft(probe.small) else None
            query = keypoints.extract_orb(probe.work, query=True, side=side)
            total += target is not None
            for p in probes:
                per_rule: dict[str, dict[int, float]] = defaultdict(dict)
                chosen: dict[str, set[int]] = defaultdict(set)
                saved = [getattr(seg.index, "nprobe", None) for seg in index.segments]
                for segment in index.segments:
                    if hasattr(segment.index, "nprobe"):
                        segment.index.nprobe = p
                    if segment.index.ntotal == 0 or len(query) < 8:
                        continue
                    k = min(VOTE_K, int(segment.index.ntotal))
                    dist, nn = segment.index.search(query.descriptors, k)
                    for rule, vote in the_rules.items():
                        votes = vote(dist, nn, segment.owner, len(segment.set_row))
                        chosen[rule] |= {int(segment.row_asset[segment.set_row[s]])
                                         for s in local.best_voted(votes)}
                        by_asset = per_rule[rule]
                        for s in np.flatnonzero(votes):
                            asset = int(segment.row_asset[segment.set_row[s]])
                            by_asset[asset] = max(by_asset.get(asset, 0), float(votes[s]))
                if len(query) >= 8:
                    chosen[GEOMETRY], per_rule[GEOMETRY] = geometry_scores(index, query)
                for segment, was in zip(index.segments, saved, strict=True):
                    if was is not None:
                        segment.index.nprobe = was
                for rule in [*the_rules, GEOMETRY]:
                    by_asset = per_rule[rule]
                    if target is None:
                        noise[(p, rule)].append(max(by_asset.values(), default=0.0))
                        continue
                    mine = by_asset.get(target, 0.0)
                    rank = 1 + sum(1 for a, v in by_asset.items() if v > mine and a != target)
                    ranks[(p, rule)].append(rank if mine else 10**6)
                    if target in chosen[rule]:
                        found[(p, rule)]["found"].append(f"{name}:{path.stem}")
                    else:
                        found[(p, rule)]["missed"].append(
                            f"{name}:{path.stem} rank {rank if mine else '-'} votes {mine:g}")
    for (p, rule), r in ranks.items():
        got = found[(p, rule)]
        print(json.dumps({
            "probes": p, "rule": rule, "candidates_hold_target": len(got["found"]),
            "of": total, "median_rank": int(np.median(r)),
            "rank_le_3": int(sum(1 for v in r if v <= 3)),
            "distractor_best_votes_median": float(np.median(noise[(p, rule)])),
            "distractor_best_votes_p90": float(np.percentile(noise[(p, rule)], 90)),
            "missed": got["missed"]}), flush=True)
    digest = hashlib.sha256(json.dumps(sorted(map(str, ids.values()))).encode()).hexdigest()
    print(json.dumps({"test_assets": len(ids), "ids_digest": digest[:12]}))


if __name__ == "__main__":
    main()
