"""Judge the matches a bench_scale.py run reports against the data's sources.

The 100,000-asset catalog of `prepare_catalog.py` is mostly game-like scenes, and scenes share
material: 94,686 scenes from 1,998 background tiles (each tile in about 47 scenes, flipped or
recoloured) and 4,037 sprites. A related query (an edited catalog scene) that also matches
another scene with the same tile or sprite has found the same picture content, not a wrong
picture. Each match is put in one class:

* expected: the query's own catalog file;
* same tile / same sprite: another catalog scene built on the query's tile (any variant), or
  sharing a sprite with it;
* other: nothing shared that the sources show (to inspect: a matcher error, or content shared
  across packages, as bench/RESULTS.md found for every earlier one).

Run: .venv/bin/python bench/bench_scale.py ... | .venv/bin/python bench/judge_matches.py --data DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def parts(source: str) -> tuple[str | None, set[str]]:
    """(tile: background key and box without its variant, sprite keys) of a scene's source."""
    tile = re.search(r"bg=([^;]*?)/v\d+", source)
    sprites = re.search(r"sprites=(.*)$", source)
    return (tile.group(1) if tile else None,
            set(sprites.group(1).split("|")) if sprites and sprites.group(1) else set())


def judge(query_source: str, expected: str, got: str, sources: dict[str, str]) -> str:
    if got == expected:
        return "expected"
    tile, sprites = parts(query_source)
    other_tile, other_sprites = parts(sources.get(got, ""))
    if tile is not None and tile == other_tile:
        return "same tile"
    if sprites & other_sprites:
        return "same sprite"
    return "other"


def rows_with_matches(value: Any) -> list[dict[str, Any]]:
    """Every dict with a "matched" list, however deep in a bench_scale output line."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("matched"), list):
            found.append(value)
        for item in value.values():
            if isinstance(item, dict | list):
                found += rows_with_matches(item)
    elif isinstance(value, list):
        for item in value:
            found += rows_with_matches(item)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    with open(args.data / "catalog.csv") as fh:
        sources = {r["file"]: r["source"] for r in csv.DictReader(fh)}
    with open(args.data / "queries.csv") as fh:
        queries = {r["file"]: r for r in csv.DictReader(fh)}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        for row in rows_with_matches(json.loads(line)):
            counts: Counter[str] = Counter()
            others = []
            for item in row["matched"]:
                q = queries[item["query"]]
                kind = "related" if q["related"] == "1" else "unrelated"
                for got in item["got"]:
                    verdict = judge(q["source"], q["catalog_file"], got, sources)
                    counts[f"{kind}: {verdict}"] += 1
                    if verdict == "other":
                        others.append((item["query"], got, sources.get(got, "")[:160]))
            print(json.dumps({"assets": row.get("assets"), "home": row.get("home"),
                              "matches": dict(sorted(counts.items())), "other": others}))


if __name__ == "__main__":
    main()
