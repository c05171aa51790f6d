"""Acceptance: recall per transform on real photographs, and no false matches.

The catalog is every photo of tests/photos.py (scikit-image samples and the PDQ reference
photos), hashed once per module through the real import-time service into a real SQLite
database. Each transform of the issue's table is applied to every catalog photo (recall of the
right asset) and to real distractor photos that are not in the catalog (must match nothing).
A catalog query that also names another asset counts as a false match too.
Queries run in two worker processes, each holding an unpickled Matcher (the clearance path).
`measure` is the measurement of one transform (bench/bench_fillers.py reruns it with a large
catalog loaded beside this one).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
from PIL import Image

from registry.fingerprint import Match, Matcher
from tests.photos import photo_paths
from tests.registry.fingerprint.helpers import DISTRACTORS, RecallOutcome, photo_catalog
from tests.registry.fingerprint.transforms import TARGETS, TRANSFORMS

# What this cascade achieved on this catalog (all at or above the targets).
ACHIEVED = dict.fromkeys(TRANSFORMS, 1.0)

_WORKER: Matcher | None = None


def _init(state: bytes) -> None:
    global _WORKER
    import cv2
    import faiss

    cv2.setNumThreads(1)  # one process per core
    faiss.omp_set_num_threads(1)
    _WORKER = pickle.loads(state)


def _match(image: Image.Image) -> tuple[list[Match], float]:
    """The matches of one query, and the seconds spent matching it."""
    assert _WORKER is not None
    start = time.perf_counter()
    found = _WORKER.match_image(image)
    return found, time.perf_counter() - start


Outcome = RecallOutcome


def measure(name: str, ids: dict[Path, int], pool: ProcessPoolExecutor) -> Outcome:
    """One transform over every catalog photo (`ids`) and every distractor."""
    transform = TRANSFORMS[name]
    photos = list(ids)
    queries = [transform(Image.open(p).convert("RGB")) for p in photos]
    queries += [transform(Image.open(p).convert("RGB")) for p in DISTRACTORS]
    results = list(pool.map(_match, queries))
    out = Outcome(total=len(photos))
    for path, (matches, _) in zip(photos, results[: len(photos)], strict=True):
        if matches and matches[0].asset_id == ids[path]:
            out.found += 1
        else:
            out.misses.append(path.name)
            if any(m.asset_id == ids[path] for m in matches):
                out.ranked_lower.append(path.name)
        out.false += [(path.name, m.asset_id) for m in matches if m.asset_id != ids[path]]
    for path, (matches, seconds) in zip(DISTRACTORS, results[len(photos):], strict=True):
        out.false += [(path.name, m.asset_id) for m in matches]
        out.seconds_unrelated.append(seconds)
    return out


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[Path, int], bytes]]:
    yield photo_catalog(tmp_path_factory.mktemp("recall"), photo_paths())


@pytest.fixture(scope="module")
def pool(catalog: tuple[dict[Path, int], bytes]) -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(catalog[1],)) as executor:
        yield executor


def test_the_catalog_holds_real_photos_and_the_distractors_are_not_in_it(
    catalog: tuple[dict[Path, int], bytes]
) -> None:
    ids, _ = catalog
    assert len(ids) >= 20 and len(DISTRACTORS) >= 9
    assert not set(DISTRACTORS) & set(ids)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transformed_catalog_photos_are_found_and_distractors_are_not(
    name: str, catalog: tuple[dict[Path, int], bytes], pool: ProcessPoolExecutor
) -> None:
    ids, _ = catalog
    outcome = measure(name, ids, pool)
    assert outcome.false == []
    assert outcome.recall >= TARGETS[name]
    assert outcome.recall >= ACHIEVED[name]
