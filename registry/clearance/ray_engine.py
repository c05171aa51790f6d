"""The Ray engine: a job's items matched by Ray Data actors, decided and committed here.

Ray Data takes the job's pending items (descriptors: path, key, member of an archive...; never
the bytes) in blocks of the job's batch size; `map_batches` hands each block to a callable-class
actor, `_MatchActor`, that was set up once with the worker configuration and the fingerprint
Matcher. A Matcher pickles as (index dir, manifest) and reopens its segments from disk
(memory-mapped verification data) when unpickled, so each actor loads the catalog's stage
indexes once and no task rebuilds them. The actor runs the local engine's `process_batch`
(read, sha256, exact lookup, match) and returns the outcomes; this process (the driver, a
`clearhouse worker` or `clearhouse clear`) decides and commits each block as it streams in, with
the same `_commit_batch` as the local engine: the job's state stays in the database, and a
resumed job skips every committed key whichever engine ran it.

On a cluster every node needs the dataset's files and the index directory at the same paths
(a shared filesystem or a synced copy) and the database URL reachable (README, "Scale").
Ray is an optional extra (`clearhouse[ray]`): this module is imported only for engine "ray".
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from registry.clearance.datasets import DatasetItem
from registry.clearance.runner import ItemOutcome, WorkerConfig, _worker_init, process_batch

log = logging.getLogger("clearhouse.clearance.ray")


class _MatchActor:
    """One Ray actor: set up once (its own database engine, the Matcher reopened from disk),
    then called with block after block of item descriptors."""

    def __init__(self, config: WorkerConfig, matcher: Any | None) -> None:
        _worker_init(config, matcher, quiet_threads=True)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        pairs = [(int(seq), pickle.loads(blob))
                 for seq, blob in zip(batch["seq"], batch["item"], strict=True)]
        outcomes = process_batch(pairs)
        return {"outcome": np.array([pickle.dumps(o) for o in outcomes], dtype=object)}


def _init_ray(address: str | None) -> bool:
    """Connect to `address` (or start a local runtime) unless Ray is already initialised in this
    process (a test or a notebook set it up); True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    return True


def run_on_ray(
    batches: Sequence[Sequence[tuple[int, DatasetItem]]],
    *,
    config: WorkerConfig,
    matcher: Any | None,
    actors: int,
    commit: Callable[[Sequence[ItemOutcome]], None],
) -> None:
    """Match every item of `batches` on Ray actors (`actors` of them, one CPU each) and pass each
    block's outcomes to `commit` as they arrive (in no particular order)."""
    import ray
    import ray.data

    started = _init_ray(config.ray_address)
    try:
        rows = [{"seq": seq, "item": pickle.dumps(item)} for batch in batches
                for seq, item in batch]
        size = max(len(b) for b in batches)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        dataset = ray.data.from_items(rows, override_num_blocks=len(batches))
        matched = dataset.map_batches(
            _MatchActor,
            fn_constructor_kwargs={"config": config, "matcher": matcher},
            batch_size=size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=max(1, actors)),
            num_cpus=1,
        )
        for block in matched.iter_batches(batch_size=size, batch_format="numpy"):
            commit([pickle.loads(blob) for blob in block["outcome"]])
    finally:
        if started:
            ray.shutdown()
