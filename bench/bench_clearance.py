"""Clearance throughput: items per second of a whole clearance job (read, hash, exact lookup,
fingerprint match, policy decision, per-batch commit) with 2 worker processes, against the same job
in a single process (the baseline), measured in the same run on the same dataset.

Dataset: N small JPEGs (128-256 px, the size of a typical web-scraped training thumbnail) cut from
real photographs (scikit-image and the PDQ reference photos) at distinct windows and sizes; 5% are
resized copies of catalog assets so that the matcher and policy paths run too. Catalog: the
real photos, each with its full fingerprint features. SQLite under a temporary home.

Run: .venv/bin/python bench/bench_clearance.py [--items 10000] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.catalog import BlobStore
from registry.catalog.importer import ImportOptions, import_file
from registry.clearance import clear_dataset
from registry.db import make_engine, make_session_factory, migrate
from registry.fingerprint import fingerprint_new_asset
from registry.policy import load_policies
from tests.photos import photo_paths

POLICY = textwrap.dedent("""\
    id: bench-training
    licensor: Bench Studio
    licensee: Bench AI
    grants:
      - use: ai_training
        permission: allowed
        scope:
          tags: [open]
      - use: ai_training
        permission: notAllowed
        scope:
          tags: [closed]
    """)


def make_dataset(folder: Path, count: int, catalog: list[Path]) -> None:
    # Unrelated items come from photos outside the catalog only.
    photos = [Image.open(p).convert("RGB") for p in photo_paths() if p not in catalog]
    catalog_images = [Image.open(p).convert("RGB") for p in catalog]
    folder.mkdir(parents=True)
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        if i % 20 == 0:  # a transformed copy of a catalog asset
            src = catalog_images[(i // 20) % len(catalog_images)]
            side = 160 + (i % 7) * 16
            image = src.resize((side, round(side * src.height / src.width)))
        else:  # a window of a real photo, at a distinct place and size
            src = photos[i % len(photos)]
            frac = 0.3 + (i % 13) * 0.03
            w, h = round(src.width * frac), round(src.height * frac)
            x = (i * 37) % max(1, src.width - w)
            y = (i * 53) % max(1, src.height - h)
            side = 128 + (i % 9) * 16
            image = src.crop((x, y, x + w, y + h)).resize((side, round(side * h / w)))
        image.save(sub / f"{i:05d}.jpg", quality=85)


def run(factory, url: str, dataset: Path, policies: Path, index: Path, workers: int,
        batch_size: int) -> tuple[float, dict[str, int]]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = clear_dataset(factory, dataset, use="ai_training", licensee="Bench AI", owner="bench",
                           policies=load_policies(policies), database_url=url, index_dir=index,
                           workers=workers, batch_size=batch_size)
    return time.perf_counter() - started, result.summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-clearance-"))
    try:
        url = f"sqlite:///{root / 'db.sqlite'}"
        migrate(url)
        factory = make_session_factory(make_engine(url))
        store = BlobStore(root / "blobs")
        catalog = photo_paths()[:6]
        for n, path in enumerate(catalog):
            tags = ["open"] if n % 2 == 0 else ["closed"]
            import_file(factory, store, path, ImportOptions(rightsholder="Bench Studio", tags=tags),
                        fingerprint_new_asset)
        policies = root / "policies"
        policies.mkdir()
        (policies / "bench.yaml").write_text(POLICY)
        dataset = root / "dataset"
        t = time.perf_counter()
        make_dataset(dataset, args.items, catalog)
        print(f"dataset: {args.items} JPEGs written in {time.perf_counter() - t:.1f} s; "
              f"catalog {len(catalog)} assets; {os.cpu_count()} CPUs; batch {args.batch_size}")
        index = root / "index"
        results = {}
        for workers in (1, 2):
            elapsed, summary = run(factory, url, dataset, policies, index, workers,
                                   args.batch_size)
            rate = args.items / elapsed
            results[workers] = rate
            label = "single process (baseline)" if workers == 1 else f"{workers} worker processes"
            print(f"{label:28s} {elapsed:8.1f} s  {rate:7.1f} items/s  {summary}")
        print(f"speed-up with 2 workers: {results[2] / results[1]:.2f}x the single-process "
              f"baseline")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
