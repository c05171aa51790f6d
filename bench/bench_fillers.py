"""Robustness with a large catalog loaded: the recall tests rerun with a bench home's assets as
fillers (issue 10: "the recall tests keep their targets with the large catalog loaded as
fillers, and 0 false matches against 100,000 fillers").

Home: a benchmark home made by bench/bench_scale.py (HOME/catalog.db, HOME/index). It is never
changed. Per recall test, a working copy is made under --work: catalog.db copied, the index
hard-linked (`cp -al`: segments are never changed once written and the manifest is replaced,
not rewritten; the copy's `.lock` is replaced by its own file, so flock and the truncating open
never touch the home's). Into the copy the test's catalog is registered and fingerprinted as
the test does (helpers.photo_catalog: add_photo, then Matcher.load, which appends one small
segment), and the test's own measurement runs on it in 2 worker processes, each holding the
unpickled Matcher (test_recall_wild.measure over its 11 transforms; test_recall.measure per
transform). The same measurement on the test's catalog alone (an empty home, as the test builds
it) runs in the same process, for the comparison.

Per transform: recall with fillers beside the test's ACHIEVED and target, false matches split
into (a) another test asset and (b) a filler (an asset of the home that is not one of the
test's ids), and the median ms per unrelated query (distractors, 2 workers busy). Each filler
hit is listed with its original_name and its nearest PDQ distance (any of its 8 dihedral
hashes against the identity hash of every picture the test uses: catalog, distractors,
backgrounds and collage tiles). A filler hit is right, and counted apart as "same picture",
when the filler is:
- within 31 bits of such a picture: the same picture, already in the bench catalog
  (bench/prepare_catalog.py takes real pictures from wesnoth-1.16-data, the test art's package,
  and the PDQ sample photos);
- a bench scene whose background is a tile of the painting a `paste_over` query pasted its art
  over (the scene's source in catalog.csv names it; the query holds that painting):
  `holds_part`;
- another painting of the query picture's variant family (tests/art.py `VARIANT_FAMILIES`:
  recolours and repaints): `variant_of`.
Beside the recall: the recall counting a right asset named anywhere in the match list (a
filler ranked first, not a lost match), and the recall counting a right asset named after only
same-picture fillers as found: those are other pictures the query truly holds (a collage's
other cells are the test's distractor portraits, which the bench catalog holds too), and a
query holding several catalog pictures has no single first. A test picture whose bytes are
already in the home is that filler's asset (register_asset returns it), which then counts as a
test asset. The last line is one JSON object with every figure.

Run: .venv/bin/python bench/bench_fillers.py --home HOME [--work DIR] [--only wild|classic]
     [--skip-baseline] [--data DIR] [--keep-work]
(wild needs the test art: `make test-art`; --data: the bench/prepare_catalog.py output the home
was built from, to show each filler hit's source picture; a stage whose version changed since
the home was indexed would be rebuilt in the copy, so the run stops unless --allow-rebuild.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAME_PICTURE_BITS = 31  # PDQ distance at which two pictures are one (Settings.pdq_match_distance)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the working copy -------------------------------------------------------------------------

def home_state(home: Path) -> tuple[Any, ...]:
    """What must not change in the home: the database's size and mtime, the manifest's text."""
    db = (home / "catalog.db").stat()
    return db.st_size, db.st_mtime_ns, (home / "index" / "manifest.json").read_text()


def check_stage_versions(home: Path, allow_rebuild: bool) -> None:
    """Stop when syncing the copy would rebuild a stage from scratch (its version changed since
    the home was indexed): at 100,000 assets that is hours, and no longer the home's index."""
    from registry.fingerprint.index import default_stages, read_manifest

    manifest = read_manifest(home / "index")
    if manifest is None:
        sys.exit(f"no fingerprint index under {home / 'index'}")
    stale = [s.name for s in default_stages()
             if (manifest["stages"].get(s.name) or {}).get("version") != s.version()]
    if stale and not allow_rebuild:
        sys.exit(f"stages {stale} changed version since the home was indexed: the copy would "
                 "rebuild them from scratch (--allow-rebuild to do it anyway)")


def working_copy(home: Path, dest: Path) -> dict[str, float]:
    """DEST/catalog.db copied, DEST/index hard-linked from the home's, its lock file its own."""
    started = time.perf_counter()
    dest.mkdir(parents=True)
    shutil.copy2(home / "catalog.db", dest / "catalog.db")
    if (home / "catalog.db-wal").exists():  # committed rows not yet checkpointed
        shutil.copy2(home / "catalog.db-wal", dest / "catalog.db-wal")
    subprocess.run(["cp", "-al", str(home / "index"), str(dest / "index")], check=True)
    (dest / "index" / ".lock").unlink(missing_ok=True)
    return {"copy_s": time.perf_counter() - started,
            "catalog_db_mib": (dest / "catalog.db").stat().st_size / 2**20}


def home_assets(root: Path) -> tuple[int, int]:
    """(assets, highest asset id) of the catalog under root."""
    from sqlalchemy import func, select

    from registry.catalog.models import Asset
    from registry.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{root / 'catalog.db'}")
    with make_session_factory(engine)() as session:
        count, top = session.execute(select(func.count(Asset.id), func.max(Asset.id))).one()
    engine.dispose()
    return int(count), int(top or 0)


def segment_count(index_dir: Path) -> int:
    from registry.fingerprint.index import read_manifest, segments_of

    manifest = read_manifest(index_dir) or {}
    return sum(len(segments_of(manifest, name)) for name in manifest.get("stages", {}))


# --- the two recall tests, through their own functions ----------------------------------------

@dataclass
class Test:
    """One recall test: its catalog, the pictures its queries are made of, and how it measures
    (returns {transform: Outcome} with found, total, false, misses, seconds_unrelated)."""

    name: str
    catalog: Callable[[], list[Path]]
    materials: Callable[[], list[Path]]
    init: Callable[[bytes], None]
    measure: Callable[[dict[Path, int], ProcessPoolExecutor], dict[str, Any]]
    achieved: dict[str, float]
    target: Callable[[str], float]
    # Pictures besides its own that a query (transform, label) is made of and that a filler
    # may hold only a part of (a scene on a tile of the painting the art was pasted over).
    holds: Callable[[str, str], list[Path]] = lambda _name, _label: []


def wild_test() -> Test:
    from tests.art import art_available
    from tests.registry.fingerprint import test_recall_wild as wild
    from tests.registry.fingerprint.transforms_wild import TARGET

    if not art_available():
        sys.exit("game art missing: run `make test-art`")
    labels = {f"{p.parent.name}/{p.stem}": p
              for p in wild.catalog_pictures() + wild.distractor_pictures()}
    return Test(
        "wild", wild.catalog_pictures,
        lambda: wild.catalog_pictures() + wild.distractor_pictures() + wild.backgrounds(),
        wild._init, wild.measure, wild.ACHIEVED, lambda _name: TARGET,
        lambda name, label: wild.pasted_over(name, labels[label]) if label in labels else [])


def classic_test() -> Test:
    from tests.photos import photo_paths
    from tests.registry.fingerprint import test_recall as classic
    from tests.registry.fingerprint.helpers import DISTRACTORS
    from tests.registry.fingerprint.transforms import TARGETS, TRANSFORMS

    def measure(ids: dict[Path, int], pool: ProcessPoolExecutor) -> dict[str, Any]:
        return {name: classic.measure(name, ids, pool) for name in TRANSFORMS}

    return Test("classic", photo_paths, lambda: photo_paths() + DISTRACTORS, classic._init,
                measure, classic.ACHIEVED, lambda name: TARGETS[name])


def run_measure(test: Test, ids: dict[Path, int], state: bytes) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=test.init,
                             initargs=(state,)) as pool:
        out = test.measure(ids, pool)
    return out, time.perf_counter() - started


# --- which filler is the test's own picture ----------------------------------------------------

def _bits(data: bytes) -> int:
    return int.from_bytes(data, "big")


class Nearest:
    """Nearest PDQ distance from an asset of a catalog to any picture the test uses."""

    def __init__(self, root: Path, materials: Iterable[Path]) -> None:
        self.root = root
        self.paths = list(dict.fromkeys(materials))
        self._codes: list[tuple[int, str]] | None = None

    def _material_codes(self) -> list[tuple[int, str]]:
        if self._codes is None:  # only when a filler was hit: ~0.5 s per picture
            from registry.fingerprint.features import media_features
            from registry.fingerprint.pdq import Pdq

            self._codes = []
            for path in self.paths:
                features = media_features(path.read_bytes(), name=str(path), kind="image")
                self._codes += [(_bits(h.bits), f"{path.parent.name}/{path.name}")
                                for h in features.hashes
                                if h.signal == Pdq.name and h.region.endswith("/identity")]
        return self._codes

    def of(self, asset_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Per asset: original_name, sha256 and (distance, picture) of the nearest one."""
        from sqlalchemy import select

        from registry.catalog.models import Asset
        from registry.db import make_engine, make_session_factory
        from registry.fingerprint.models import Fingerprint
        from registry.fingerprint.pdq import Pdq

        wanted = sorted(set(asset_ids))
        if not wanted:
            return {}
        codes = self._material_codes()
        out: dict[int, dict[str, Any]] = {}
        engine = make_engine(f"sqlite:///{self.root / 'catalog.db'}")
        with make_session_factory(engine)() as session:
            for asset_id in wanted:
                asset = session.get(Asset, asset_id)
                hashes = session.execute(select(Fingerprint.hash).where(
                    Fingerprint.asset_id == asset_id, Fingerprint.signal == Pdq.name,
                    Fingerprint.region.like("full/%") | Fingerprint.region.like("art/%"),
                )).scalars().all()
                best = min((((_bits(h) ^ c).bit_count(), picture)
                            for h in hashes for c, picture in codes), default=(256, ""))
                out[asset_id] = {"name": asset.original_name if asset else None,
                                 "pdq_bits": best[0], "nearest": best[1]}
        engine.dispose()
        return out


# --- one run: a test's catalog with or without the home's assets ------------------------------

def holds_part(filler: dict[str, Any], pictures: list[Path]) -> bool:
    """True when the filler is a bench scene on a tile of one of `pictures` (its source, from
    catalog.csv, names the picture as its background: `bg=package:.../story/x.jpg@x,y,wxh`)."""
    source = filler.get("source") or ""
    return any(f"/{p.parent.name}/{p.name}@" in source for p in pictures)


def variant_of(label: str, filler: dict[str, Any]) -> bool:
    """True when the filler is another painting of the query picture's variant family
    (tests/art.py `VARIANT_FAMILIES`: recolours and repaints, which may match each other)."""
    from tests.art import VARIANT_FAMILIES

    source = filler.get("source") or ""
    return any(f"/portraits/{other}.png" in source for family in VARIANT_FAMILIES
               if label in family for other in family if other != label)


def summarise(test: Test, out: dict[str, Any], ids: dict[Path, int],
              fillers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    test_ids = set(ids.values())
    rows: dict[str, Any] = {}
    for name, o in out.items():
        times = sorted(o.seconds_unrelated)
        false_test = [(q, a) for q, a in o.false if a in test_ids]
        false_filler = [(q, a) for q, a in o.false if a not in test_ids]
        same = [(q, a) for q, a in false_filler
                if fillers[a]["pdq_bits"] <= SAME_PICTURE_BITS
                or holds_part(fillers[a], test.holds(name, q)) or variant_of(q, fillers[a])]
        # A right asset named after only fillers that are pictures the query truly holds
        # (another cell of the same collage): every match above it is right too.
        behind_content = sorted(
            q for q, above in getattr(o, "above", {}).items()
            if all((q, a) in same for a in above))
        rows[name] = {
            "recall": round(o.recall, 4), "found": o.found, "total": o.total,
            "achieved": test.achieved[name], "target": test.target(name),
            "false_test": len(false_test), "false_filler": len(false_filler) - len(same),
            "filler_same_picture": len(same),
            "ms_unrelated_median": round(times[len(times) // 2] * 1000, 1) if times else None,
            "misses": o.misses, "ranked_lower": o.ranked_lower,
            "recall_anywhere": round((o.found + len(o.ranked_lower)) / max(o.total, 1), 4),
            "behind_content": behind_content,
            "recall_content": round((o.found + len(behind_content)) / max(o.total, 1), 4),
            "misses_with_same_picture_filler": sorted({q for q, _ in same} & set(o.misses)),
            "false_test_pairs": false_test, "false_filler_pairs": false_filler,
            "same_picture_pairs": same,
        }
    return rows


def run(test: Test, root: Path, *, with_home: Path | None, names: dict[str, str],
        allow_rebuild: bool) -> dict[str, Any]:
    """The test's catalog registered under root (into a copy of the home when with_home), its
    measurement, and the figures."""
    from tests.registry.fingerprint.helpers import photo_catalog

    setup: dict[str, Any] = {}
    before_assets = before_top = 0
    if with_home is not None:
        check_stage_versions(with_home, allow_rebuild)
        setup.update(working_copy(with_home, root))
        before_assets, before_top = home_assets(root)
        setup["home_assets"] = before_assets
        setup["segments_before"] = segment_count(root / "index")
        log(f"[{test.name}] working copy in {setup['copy_s']:.1f} s "
            f"({before_assets} assets, catalog.db {setup['catalog_db_mib']:.0f} MiB)")
    else:
        root.mkdir(parents=True)
    started = time.perf_counter()
    ids, state = photo_catalog(root, test.catalog())  # register, fingerprint, Matcher.load
    setup["register_and_sync_s"] = time.perf_counter() - started
    setup["test_pictures"] = len(ids)
    setup["already_in_home"] = sorted(f"{p.parent.name}/{p.name}" for p, i in ids.items()
                                      if i <= before_top)
    setup["segments_after"] = segment_count(root / "index")
    started = time.perf_counter()
    matcher = pickle.loads(state)
    setup["matcher_assets"] = matcher.asset_count
    setup["matcher_open_s"] = time.perf_counter() - started
    del matcher
    log(f"[{test.name}] {len(ids)} test pictures registered + synced in "
        f"{setup['register_and_sync_s']:.1f} s; measuring against "
        f"{setup['matcher_assets']} assets")
    out, seconds = run_measure(test, ids, state)
    setup["measure_s"] = seconds
    test_ids = set(ids.values())
    hit = {a for o in out.values() for _, a in o.false if a not in test_ids}
    fillers = Nearest(root, test.materials()).of(hit)
    for info in fillers.values():
        info["source"] = names.get(info["name"] or "", "")
    return {"setup": setup, "transforms": summarise(test, out, ids, fillers),
            "fillers_hit": {str(a): v for a, v in fillers.items()}}


# --- output -----------------------------------------------------------------------------------

def table(title: str, result: dict[str, Any]) -> str:
    lines = [f"### {title}", "",
             "| transform | recall | found | ACHIEVED | target | false: test asset "
             "| false: filler | filler = same picture | misses with a same-picture filler "
             "| recall, right asset anywhere in the list "
             "| recall, right asset after only pictures the query holds "
             "| ms per unrelated query (median) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = result["transforms"]
    for name, r in rows.items():
        flag = "" if round(r["recall"], 2) >= r["achieved"] else " (below)"
        ms = "" if r["ms_unrelated_median"] is None else f"{r['ms_unrelated_median']:.0f}"
        lines.append(f"| {name} | {r['recall']:.2f}{flag} | {r['found']}/{r['total']} | "
                     f"{r['achieved']:.2f} | {r['target']:.2f} | {r['false_test']} | "
                     f"{r['false_filler']} | {r['filler_same_picture']} | "
                     f"{len(r['misses_with_same_picture_filler'])} | "
                     f"{r['recall_anywhere']:.2f} | {r['recall_content']:.2f} | {ms} |")
    found = sum(r["found"] for r in rows.values())
    total = sum(r["total"] for r in rows.values())
    lower = sum(len(r["ranked_lower"]) for r in rows.values())
    behind = sum(len(r["behind_content"]) for r in rows.values())
    lines.append(f"| all | {found / max(total, 1):.2f} | {found}/{total} | | | "
                 f"{sum(r['false_test'] for r in rows.values())} | "
                 f"{sum(r['false_filler'] for r in rows.values())} | "
                 f"{sum(r['filler_same_picture'] for r in rows.values())} | "
                 f"{sum(len(r['misses_with_same_picture_filler']) for r in rows.values())} | "
                 f"{(found + lower) / max(total, 1):.2f} | "
                 f"{(found + behind) / max(total, 1):.2f} | |")
    return "\n".join(lines)


def details(result: dict[str, Any]) -> str:
    lines = []
    fillers = result["fillers_hit"]
    for name, r in result["transforms"].items():
        if r["misses"]:
            lower = f" (right asset named lower: {r['ranked_lower']})" if r["ranked_lower"] else ""
            lines.append(f"{name}: missed {r['misses']}{lower}")
        for query, asset in r["false_test_pairs"]:
            lines.append(f"{name}: false (test asset) {query} -> asset {asset}")
        for query, asset in r["false_filler_pairs"]:
            f = fillers[str(asset)]
            kind = "same picture" if (query, asset) in r["same_picture_pairs"] else "FALSE"
            if kind != "FALSE" and f["pdq_bits"] > SAME_PICTURE_BITS:
                kind = "a variant or a part of a picture the query holds"
            source = f" source {f['source']}" if f.get("source") else ""
            lines.append(f"{name}: filler hit ({kind}) {query} -> asset {asset} "
                         f"{f['name']!r}{source}; nearest test picture {f['nearest']} at "
                         f"{f['pdq_bits']} bits")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True,
                        help="a bench home (catalog.db + index) made by bench/bench_scale.py")
    parser.add_argument("--work", type=Path, help="for the working copies (default: a temp dir)")
    parser.add_argument("--only", choices=["wild", "classic"])
    parser.add_argument("--skip-baseline", action="store_true",
                        help="no run of the test catalog alone")
    parser.add_argument("--data", type=Path, help="prepare_catalog output (catalog.csv): "
                        "show each filler hit's source")
    parser.add_argument("--keep-work", action="store_true", help="keep the working copies")
    parser.add_argument("--allow-rebuild", action="store_true")
    args = parser.parse_args()
    home = args.home.resolve()
    if not (home / "catalog.db").exists() or not (home / "index" / "manifest.json").exists():
        sys.exit(f"{home} is not a bench home (catalog.db and index/manifest.json)")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-fillers-"))
    names: dict[str, str] = {}
    if args.data:
        with open(args.data / "catalog.csv") as fh:
            names = {r["file"]: r["source"] for r in csv.DictReader(fh)}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    before = home_state(home)
    tests = [t for t in ("wild", "classic") if args.only in (None, t)]
    results: dict[str, Any] = {"home": str(home), "tests": {}}
    for name in tests:
        test = wild_test() if name == "wild" else classic_test()
        entry: dict[str, Any] = {}
        folder = work / f"{name}-fillers"
        entry["fillers"] = run(test, folder, with_home=home, names=names,
                               allow_rebuild=args.allow_rebuild)
        if not args.keep_work:
            shutil.rmtree(folder)  # the index's hard links only: the home keeps its files
        print(table(f"{name}: with {entry['fillers']['setup']['home_assets']} fillers",
                    entry["fillers"]), flush=True)
        print(details(entry["fillers"]), flush=True)
        if not args.skip_baseline:
            folder = work / f"{name}-alone"
            entry["alone"] = run(test, folder, with_home=None, names={}, allow_rebuild=False)
            if not args.keep_work:
                shutil.rmtree(folder)
            print(table(f"{name}: test catalog alone (no fillers)", entry["alone"]), flush=True)
            print(details(entry["alone"]), flush=True)
        results["tests"][name] = entry
    results["home_unchanged"] = home_state(home) == before
    results["seconds"] = time.perf_counter() - started
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nhome unchanged: {results['home_unchanged']}; {results['seconds']:.0f} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
