"""Acceptance (issue 11): recall per transform the way datasets and reposts reuse pictures, on
real photos and real game art with transparency, and no false match against distractors that
include other art by the same artists in the same style.

Catalog: 12 real photos (tests/photos.py) and 14 Wesnoth character portraits (RGBA, tests/art.py),
imported through the real import-time service into a real SQLite database. Distractors (queries
that must match nothing, under every transform): 6 real photos and 12 other portraits of the same
package, painted by the same artists in the same style. Variants of one painting are kept out
of the sets (tests/art.py lists them). Every transform (transforms_wild.py) is seeded per
picture, so the figures are reproducible. Queries run in two worker processes, each holding an
unpickled Matcher (the clearance path). A catalog query that also names another asset counts as
a false match.

`python -m tests.registry.fingerprint.test_recall_wild` prints the table (recall per transform,
false matches, ms per query) that README and bench/RESULTS.md quote.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import pytest

from registry.fingerprint import Matcher
from tests.art import (
    CATALOG_PORTRAITS,
    DISTRACTOR_PORTRAITS,
    STORY_PAINTINGS,
    art_available,
    portrait,
    require_art,
    story,
)
from tests.photos import SHARED_FIXTURES, skimage_photo
from tests.registry.fingerprint.helpers import RecallOutcome, photo_catalog
from tests.registry.fingerprint.transforms_wild import (
    ALPHA_ONLY,
    TARGET,
    Transform,
    has_alpha,
    open_picture,
    paste_background,
    rng_for,
    wild_transforms,
)

pytestmark = pytest.mark.slow

CATALOG_PHOTOS = [skimage_photo(n) for n in (
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png",
    "motorcycle_left.png", "coins.png", "horse.png", "brick.png")] + [
    SHARED_FIXTURES / "pdq" / p for p in (
        "dih/bridge-1-original.jpg", "labelme-subset/q0122.jpg", "labelme-subset/q0291.jpg")]
DISTRACTOR_PHOTOS = [skimage_photo(n) for n in ("retina.jpg", "moon.png", "gravel.png")] + [
    SHARED_FIXTURES / "pdq" / p for p in (
        "labelme-subset/q0003.jpg", "labelme-subset/q0004.jpg", "labelme-subset/q2821.jpg")]
# Not in the catalog either: other tiles of the collages, and backgrounds for pasted art.
FILLER_PHOTOS = [skimage_photo(n) for n in ("hubble_deep_field.jpg", "grass.png", "page.png")] + [
    SHARED_FIXTURES / "pdq" / p for p in ("labelme-subset/q0746.jpg", "labelme-subset/q1050.jpg")]

TRANSFORM_NAMES = ["rrc_35_80", "rrc_35_80_mirror", "rotate_10_20", "jitter_blur",
                   "collage_tile", "meme_jpeg50", "screen_photo", "posterize_edges",
                   "aspect_1_3", "page_20_30", "paste_over"]
# Measured on main before issue 11's changes (commit bb24ed7), same pictures and seeds.
BASELINE: dict[str, float] = {
    "rrc_35_80": 0.81, "rrc_35_80_mirror": 0.85, "rotate_10_20": 0.85, "jitter_blur": 0.73,
    "collage_tile": 0.23, "meme_jpeg50": 0.81, "screen_photo": 0.88, "posterize_edges": 0.69,
    "aspect_1_3": 0.85, "page_20_30": 0.46, "paste_over": 0.80,
}
# What the matcher achieves now: the test keeps it from regressing. Every transform meets the
# issue's target (TARGET = 0.90) since posterize_edges' weak fits are checked by hash (0.85 ->
# 0.92, README "Matching in the wild").
ACHIEVED: dict[str, float] = {
    "rrc_35_80": 0.92, "rrc_35_80_mirror": 0.96, "rotate_10_20": 0.92, "jitter_blur": 0.96,
    "collage_tile": 0.92, "meme_jpeg50": 1.0, "screen_photo": 0.92, "posterize_edges": 0.92,
    "aspect_1_3": 1.0, "page_20_30": 0.96, "paste_over": 0.93,
}


def catalog_pictures() -> list[Path]:
    return CATALOG_PHOTOS + [portrait(n) for n in CATALOG_PORTRAITS]


def distractor_pictures() -> list[Path]:
    return DISTRACTOR_PHOTOS + [portrait(n) for n in DISTRACTOR_PORTRAITS]


def backgrounds() -> list[Path]:
    """Paintings and photos that art with transparency is pasted over."""
    return [story(s) for s in STORY_PAINTINGS] + FILLER_PHOTOS


def transforms() -> dict[str, Transform]:
    fillers = FILLER_PHOTOS + [portrait(n) for n in DISTRACTOR_PORTRAITS]
    return wild_transforms(fillers, backgrounds())


def pasted_over(name: str, path: Path) -> list[Path]:
    """The painting or photo that transform `name` of the picture at `path` pastes it over
    (none for the other transforms)."""
    if name != "paste_over":
        return []
    return [paste_background(backgrounds(), rng_for(name, path.name))]


_WORKER: tuple[Matcher, dict[str, Transform]] | None = None


def _init(state: bytes) -> None:
    global _WORKER
    import cv2
    import faiss

    cv2.setNumThreads(1)  # one process per core
    faiss.omp_set_num_threads(1)
    _WORKER = (pickle.loads(state), transforms())


def _query(job: tuple[str, str]) -> tuple[list[tuple[int, str]], float]:
    """Transform one picture and match it: ([(asset id, kind)], seconds spent matching)."""
    assert _WORKER is not None
    matcher, table = _WORKER
    name, path = job
    query = table[name](open_picture(Path(path)), rng_for(name, Path(path).name))
    start = time.perf_counter()
    found = matcher.match_image(query)
    return [(m.asset_id, str(m.kind)) for m in found], time.perf_counter() - start


@dataclass
class Outcome(RecallOutcome):
    kinds: dict[str, int] = field(default_factory=dict)  # of the right matches
    # Of a query whose right asset was named lower: the assets named before it.
    above: dict[str, list[int]] = field(default_factory=dict)


def build_catalog(root: Path) -> tuple[dict[Path, int], bytes]:
    return photo_catalog(root, catalog_pictures())


def measure(ids: dict[Path, int], pool: ProcessPoolExecutor) -> dict[str, Outcome]:
    """Every transform over every catalog picture and every distractor."""
    jobs: list[tuple[str, Path, int | None]] = []
    for name in TRANSFORM_NAMES:
        for path in catalog_pictures() + distractor_pictures():
            if name in ALPHA_ONLY and not has_alpha(open_picture(path)):
                continue
            jobs.append((name, path, ids.get(path)))
    results = pool.map(_query, [(n, str(p)) for n, p, _ in jobs], chunksize=2)
    out = {name: Outcome() for name in TRANSFORM_NAMES}
    for (name, path, target), (matches, seconds) in zip(jobs, results, strict=True):
        outcome = out[name]
        label = f"{path.parent.name}/{path.stem}"
        if target is None:
            outcome.false += [(label, a) for a, _ in matches]
            outcome.seconds_unrelated.append(seconds)
            continue
        outcome.total += 1
        if matches and matches[0][0] == target:
            outcome.found += 1
            outcome.kinds[matches[0][1]] = outcome.kinds.get(matches[0][1], 0) + 1
        else:
            outcome.misses.append(label)
            if any(a == target for a, _ in matches):
                outcome.ranked_lower.append(label)
                named = [a for a, _ in matches]
                outcome.above[label] = named[:named.index(target)]
        outcome.false += [(label, a) for a, _ in matches if a != target]
    return out


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    require_art()
    ids, state = build_catalog(tmp_path_factory.mktemp("recall-wild"))
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(state,)) as pool:
        yield measure(ids, pool)


def test_the_catalog_holds_photos_and_art_with_transparency_and_no_distractor() -> None:
    require_art()
    catalog = catalog_pictures()
    assert len(catalog) >= 24 and len(distractor_pictures()) >= 18
    assert sum(has_alpha(open_picture(p)) for p in catalog) >= 12
    assert not set(distractor_pictures()) & set(catalog)
    assert not set(FILLER_PHOTOS) & set(catalog)


@pytest.mark.parametrize("name", TRANSFORM_NAMES)
def test_pictures_reused_in_the_wild_are_found_and_distractors_are_not(
    name: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[name]
    assert outcome.total >= 14
    assert outcome.false == []
    assert round(outcome.recall, 2) >= ACHIEVED[name], outcome.misses


def table(out: dict[str, Outcome]) -> str:
    lines = ["| transform | recall | found | copy/derivative/similar | false matches "
             "| ms per unrelated query (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, o in out.items():
        times = sorted(o.seconds_unrelated)
        median = times[len(times) // 2] * 1000 if times else float("nan")
        kinds = "/".join(str(o.kinds.get(k, 0)) for k in ("copy", "derivative", "similar"))
        lines.append(f"| {name} | {o.recall:.2f} | {o.found}/{o.total} | {kinds} | "
                     f"{len(o.false)} | {median:.0f} |")
    found = sum(o.found for o in out.values())
    total = sum(o.total for o in out.values())
    kinds = "/".join(str(sum(o.kinds.get(k, 0) for o in out.values()))
                     for k in ("copy", "derivative", "similar"))
    lines.append(f"| all | {found / total:.2f} | {found}/{total} | {kinds} | "
                 f"{sum(len(o.false) for o in out.values())} | |")
    return "\n".join(lines)


def main() -> None:
    if not art_available():
        sys.exit("game art missing: run scripts/fetch-test-art.sh")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ids, state = build_catalog(Path(tmp))
        built = time.perf_counter() - start
        with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_init,
                                 initargs=(state,)) as pool:
            out = measure(ids, pool)
    print(table(out))
    print(f"\ncatalog built in {built:.1f} s; target {TARGET:.2f} per transform")
    for name, o in out.items():
        if o.misses or o.false:
            print(f"{name}: missed {o.misses}; false {o.false}")


if __name__ == "__main__":
    main()
