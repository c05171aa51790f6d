"""The Ray engine against the local engine on the same dataset, in one run, and a scale estimate.

Both jobs clear the same N JPEGs (bench_clearance.make_dataset: windows of real photos, 5%
transformed catalog copies) against the same catalog and policies, with 2 workers each: the local
engine's process pool (the baseline) and 2 Ray Data actors on a local Ray runtime (num_cpus=2,
started before the clock runs; its start-up is printed apart). Each actor's resident memory is
read from /proc while the job runs. The estimate at the end derives items/s per core from the
local engine's run and the cores a 10M-item day needs at that rate.

`--catalog-home DIR` starts from a bench_scale.py or simulate_catalog.py home (its catalog.db and
fingerprint index, e.g. 10,000 assets of real art, or 10 copies of them) instead of the 6-photo
catalog, so the actors' memory is read with a large catalog's stage indexes loaded (the
dataset's copies of the 6 photos are then unrelated items like the rest).

Run: .venv/bin/python bench/bench_engines.py [--items 10000] [--batch-size 32]
     [--catalog-home DIR]  (needs `make ray`)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_clearance import POLICY, make_dataset
from registry.catalog import BlobStore
from registry.catalog.importer import ImportOptions, import_file
from registry.catalog.models import Asset
from registry.clearance import clear_dataset, comparable
from registry.db import make_engine, make_session_factory, migrate
from registry.fingerprint import fingerprint_new_asset
from registry.policy import load_policies
from tests.photos import photo_paths

ITEMS_PER_DAY = 10_000_000
SECONDS_PER_DAY = 86_400


def _actor_rss_mib() -> dict[int, float]:
    """Resident memory of every Ray Data map actor process on this machine (MiB)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"MapWorker" not in cmd:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[int(pid)] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return found


def main() -> None:
    import ray

    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--catalog-home", type=Path,
                        help="a bench_scale.py home whose catalog and index to start from")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    try:
        url = f"sqlite:///{root / 'db.sqlite'}"
        if args.catalog_home:
            shutil.copy(args.catalog_home / "catalog.db", root / "db.sqlite")
            # Hard links: the segments are never written in place (a sync writes new ones).
            shutil.copytree(args.catalog_home / "index", root / "index", copy_function=os.link)
        migrate(url)
        factory = make_session_factory(make_engine(url))
        store = BlobStore(root / "blobs")
        catalog = photo_paths()[:6]
        # A simulated catalog (bench/simulate_catalog.py) holds no keypoint blobs: an import
        # would make the next sync merge its segments from them, so it is taken as it is.
        for n, path in enumerate([] if args.catalog_home else catalog):
            tags = ["open"] if n % 2 == 0 else ["closed"]
            import_file(factory, store, path, ImportOptions(rightsholder="Bench Studio", tags=tags),
                        fingerprint_new_asset)
        policies = root / "policies"
        policies.mkdir()
        (policies / "bench.yaml").write_text(POLICY)
        dataset = root / "dataset"
        make_dataset(dataset, args.items, catalog)
        with factory() as session:
            assets = session.query(Asset).count()
        print(f"dataset: {args.items} JPEGs; catalog {assets} assets; {os.cpu_count()} "
              f"CPUs; batch {args.batch_size}; 2 workers per engine")

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray starts its workers at nice 15 (its daemons keep priority). On a machine shared
        # with other work that starves the actors while the local engine's processes run at
        # nice 0 (measured: a 10,000-item job at load 13, actors at 6-9% CPU): same priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        t = time.perf_counter()
        ray.init(num_cpus=2, _temp_dir=str(root / "ray"), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        print(f"ray runtime start-up: {time.perf_counter() - t:.1f} s (not counted below)")

        common = dict(use="ai_training", licensee="Bench AI", owner="bench",
                      policies=load_policies(policies), database_url=url,
                      index_dir=root / "index", workers=2, batch_size=args.batch_size)
        rates, reports = {}, {}
        peak: dict[int, float] = {}
        for engine in ("local", "ray"):
            stop = threading.Event()

            def watch(stop: threading.Event = stop) -> None:
                while not stop.wait(0.5):
                    for pid, rss in _actor_rss_mib().items():
                        peak[pid] = max(peak.get(pid, 0.0), rss)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            t = time.perf_counter()
            result = clear_dataset(factory, dataset, engine=engine, **common)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - t
            stop.set()
            watcher.join()
            rates[engine] = args.items / elapsed
            reports[engine] = comparable(result.report)
            label = "local engine (baseline)" if engine == "local" else "ray engine, 2 actors"
            print(f"{label:26s} {elapsed:8.1f} s  {rates[engine]:7.1f} items/s  {result.summary}")
        ray.shutdown()
        print(f"ray / local throughput: {rates['ray'] / rates['local']:.2f}x; reports identical "
              f"item for item: {reports['ray'] == reports['local']}")
        if peak:
            print("peak resident memory per Ray actor: "
                  + ", ".join(f"{rss:.0f} MiB" for rss in sorted(peak.values())))
        per_core = rates["local"] / 2
        cores = ITEMS_PER_DAY / SECONDS_PER_DAY / per_core
        print(f"estimate: {per_core:.1f} items/s per core (this machine, this catalog); "
              f"10M items in a day need {cores:.0f} cores at that rate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
