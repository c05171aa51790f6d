"""Policy decisions per second: compiled PolicySet against a naive baseline, in the same run.

Baseline ("naive"): what a decision costs when the policy files are re-read, re-validated and
re-compiled for every decision (no PolicySet kept). Then `decide` per asset on a compiled set,
and `decide_many` (compiled once, memoised per kind of asset) on 100,000 assets x 1 use, in
two catalogs: a realistic one (franchises and a handful of tags) and one where every asset also
has a tag of its own that no policy names (decisions still memoise: only named tags count).
`decide()` per asset is the path with no memo at all.

    .venv/bin/python bench/bench_policy.py [--assets 100000] [--naive 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from registry.policy import AssetFacts, Use, load_policies  # noqa: E402

POLICIES = REPO / "policies"
ON = dt.date(2026, 11, 25)
CATALOG = [
    ("Northwind Games", "Skyreach"),
    ("Northwind Games", "Skyreach Tactics"),
    ("Meridian Pictures", "Harbor Lights"),
    ("Meridian Pictures", "Night Ferry"),
    ("Meridian Pictures", None),
]
TAGS = ["press-kit", "unreleased", "concept-art", "key-art", "bts", "poster", "still", "ui"]


def catalog(n: int, *, unique_tags: bool, seed: int = 4) -> list[AssetFacts]:
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        holder, franchise = rng.choice(CATALOG)
        tags = tuple(sorted(rng.sample(TAGS, rng.randint(0, 2))))
        if unique_tags:
            tags = (*tags, f"shot-{i}")
        out.append(AssetFacts(i, f"{i:064x}", holder, franchise, tags,
                              rng.choice([640, 1024, 4096]), rng.choice([480, 768, 2160])))
    return out


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=300, help="decisions for the baseline")
    parser.add_argument("--use", default=Use.ai_training.value)
    args = parser.parse_args()
    use, licensee = Use(args.use), "Lumen AI"

    realistic = catalog(args.assets, unique_tags=False)
    unique = catalog(args.assets, unique_tags=True)
    files = sorted(POLICIES.glob("*.y*ml"))
    print(f"policies: {len(files)} files in {POLICIES.relative_to(REPO)}; "
          f"{args.assets:,} assets x 1 use ({use}) for {licensee!r} on {ON}")

    sample = realistic[: args.naive]

    def naive() -> None:
        for a in sample:
            load_policies(POLICIES).decide(a, licensee=licensee, use=use, on=ON)

    t_naive = best_of(2, naive)
    naive_rate = len(sample) / t_naive

    compile_time = best_of(3, lambda: load_policies(POLICIES))
    policy_set = load_policies(POLICIES)

    def one_by_one() -> None:  # keeps its results, as a caller would
        _ = [policy_set.decide(a, licensee=licensee, use=use, on=ON) for a in realistic]

    t_one = best_of(2, one_by_one)
    t_many = best_of(3, lambda: policy_set.decide_many(realistic, licensee=licensee, use=use,
                                                        on=ON))
    t_unique = best_of(2, lambda: policy_set.decide_many(unique, licensee=licensee, use=use,
                                                          on=ON))
    outcomes = Counter(str(d.outcome) for d in policy_set.decide_many(
        realistic, licensee=licensee, use=use, on=ON))

    n = args.assets
    rows = [
        ("naive: re-read files per decision", len(sample), t_naive, naive_rate),
        ("decide() per asset, compiled once", n, t_one, n / t_one),
        ("decide_many(), realistic catalog", n, t_many, n / t_many),
        ("decide_many(), a unique tag per asset", n, t_unique, n / t_unique),
    ]
    print(f"load + validate + compile the policies once: {compile_time * 1000:.1f} ms")
    print(f"{'method':38} {'decisions':>10} {'seconds':>9} {'per second':>12} "
          f"{'ms/10k':>8} {'vs naive':>9}")
    for name, count, seconds, rate in rows:
        print(f"{name:38} {count:>10,} {seconds:>9.3f} {rate:>12,.0f} "
              f"{10_000 / rate * 1000:>8.1f} {rate / naive_rate:>8.0f}x")
    print(f"outcomes (realistic): {dict(outcomes)}")


if __name__ == "__main__":
    main()
