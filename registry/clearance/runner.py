"""Running a clearance job: worker processes match items, the parent decides and commits per batch.

The flow for one batch of items (a list of `(seq, DatasetItem)`):
1. a worker process reads each item's bytes (datasets.read_item), hashes them, and looks the sha256
   up in the catalog: an exact duplicate of a catalog file is matched on the spot (signal `sha256`,
   distance 0) without any fingerprinting;
2. every other item goes through the fingerprint Matcher (`match_file`, which never raises for bad
   media: corrupt, bomb or unknown files come back with an error and become `error` items);
3. the parent process takes the batch's results, asks the policy set for a decision on every
   matched asset (cached per asset for the job: same asset, licensee, use and model give the same
   decision), derives each item's verdict, and commits the batch's rows in one transaction.

A job killed at any moment (SIGKILL, power loss) leaves only whole committed batches behind; running
it again (`resume`) lists the dataset again, skips every key already committed, and the unique
constraint (job_id, item_key) guarantees no duplicate row even if two runners raced.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from registry.audit import Actor, record
from registry.catalog.models import Asset
from registry.clearance.datasets import (
    Dataset,
    DatasetItem,
    dataset_digest,
    item_digest,
    read_item,
)
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.optout import most_restrictive, read_opt_out_signals
from registry.clearance.queue import LeaseLost
from registry.db import make_engine, session_scope, utcnow
from registry.errors import Conflict, InvalidInput, NotFound, RegistryError
from registry.fingerprint import find_in_catalog
from registry.vocabulary import USES

if TYPE_CHECKING:  # types only: the fingerprint and policy areas load lazily
    from registry.fingerprint import Matcher
    from registry.policy import PolicySet

log = logging.getLogger("clearhouse.clearance")
THUMBNAIL_PX = 160
DEFAULT_BATCH_SIZE = 16
EXACT_SIGNAL = "sha256"
ENGINES = ("local", "ray")  # local: a process pool on this machine; ray: Ray Data actors


# A database that goes away (a PostgreSQL restart, a lost connection) pauses the job: each
# commit is retried for this long before the job fails with the reason.
DB_RETRY_S = 120.0
DB_RETRY_PAUSE_S = 1.0


class JobCancelled(Exception):
    """Raised between batches when a person cancelled the running job (not an error)."""


def _is_disconnect(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    name = type(exc.orig).__name__ if exc.orig is not None else ""
    text = str(exc.orig or exc).lower()
    return name in {"OperationalError", "InterfaceError", "AdminShutdown"} and not any(
        word in text for word in ("syntax", "no such table", "does not exist"))


def with_db_retry(fn: Callable[[], Any], *, what: str) -> Any:
    """Run `fn` (a whole transaction), again after a pause while the database is unreachable."""
    deadline = time.monotonic() + DB_RETRY_S
    while True:
        try:
            return fn()
        except DBAPIError as exc:
            if not _is_disconnect(exc) or time.monotonic() > deadline:
                raise
            log.warning("%s: database unreachable (%s); retrying", what,
                        str(exc.orig or exc).strip().splitlines()[0])
            time.sleep(DB_RETRY_PAUSE_S)


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs besides the matcher (picklable)."""

    database_url: str
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000
    use: str = "ai_training"  # the job's use: which opt-out signals matter (set by run_job)
    ray_address: str | None = None  # engine "ray": the cluster (None: start a local one)


@dataclass(frozen=True)
class ItemOutcome:
    """A worker's finding for one item, before any policy decision."""

    seq: int
    key: str
    path: str
    item_id: str | None
    caption: str | None
    sha256: str | None
    size: int | None
    matches: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    thumbnail: bytes | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)  # opt-out signals for the use
    url: str | None = None  # the item's URL, when the dataset gives one


# --- worker side -----------------------------------------------------------------------------

@dataclass
class Worker:
    """What one worker process holds while it matches batches: its settings, its own engine
    (never a connection inherited from the parent) and the fingerprint Matcher (reloaded from the
    index on disk when unpickled; None matches exact copies of catalog files only)."""

    config: WorkerConfig
    engine: Engine
    matcher: Matcher | None


# This process's worker, set by _worker_init (a pool initializer runs once per process).
_WORKER: Worker | None = None


def _worker_init(config: WorkerConfig, matcher: Matcher | None,
                 quiet_threads: bool = False) -> None:
    """Set up this process's Worker (see Worker)."""
    global _WORKER
    if quiet_threads:  # one process per core: keep each one single-threaded
        import cv2
        import faiss

        cv2.setNumThreads(1)
        faiss.omp_set_num_threads(1)
    if _WORKER is not None:
        _WORKER.engine.dispose()
    _WORKER = Worker(config, make_engine(config.database_url), matcher)


def _current_worker() -> Worker:
    if _WORKER is None:
        raise RuntimeError("process_batch called in a process that _worker_init did not set up")
    return _WORKER


def load_matcher(session: Session, *, index_dir: Path, max_distance: int) -> Matcher:
    """The fingerprint Matcher over a fresh index (rebuilt here if the catalog changed)."""
    from registry.fingerprint import Matcher

    return Matcher.load(session, index_dir=index_dir, max_distance=max_distance)


def _thumbnail(data: bytes, name: str, config: WorkerConfig) -> bytes | None:
    from registry.media import load_image

    try:
        image = load_image(data, name=name, max_bytes=config.max_bytes,
                           max_pixels=config.max_pixels, draft_size=(THUMBNAIL_PX, THUMBNAIL_PX))
    except RegistryError:
        return None  # a video or unreadable: the report shows no thumbnail
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _probe_error(data: bytes, name: str, config: WorkerConfig) -> str | None:
    from registry.media import probe

    try:
        probe(data, name=name, max_bytes=config.max_bytes, max_pixels=config.max_pixels)
    except RegistryError as exc:
        return exc.message
    return None


def _best_per_asset(matches: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first (best) match of each asset, in the matcher's order."""
    seen: set[int] = set()
    kept = []
    for match in matches:
        asset_id = int(match["asset_id"])
        if asset_id not in seen:
            seen.add(asset_id)
            kept.append(match)
    return kept


def process_batch(batch: Sequence[tuple[int, DatasetItem]]) -> list[ItemOutcome]:
    """Read, hash and match one batch of items (in a worker process set up by _worker_init);
    never raises for an item's content."""
    worker = _current_worker()
    config, engine, matcher = worker.config, worker.engine, worker.matcher
    read = [(seq, item, read_item(item, max_bytes=config.max_bytes)) for seq, item in batch]
    hashes = {got.sha256 for _, _, got in read if got.sha256}
    exact: dict[str, tuple[int, str]] = {}
    if hashes:
        def lookup() -> dict[str, tuple[int, str]]:
            with Session(engine) as session:
                return {sha: (hit.asset_id, hit.sha256)
                        for sha, hit in find_in_catalog(session, hashes).items()}

        exact = with_db_retry(lookup, what="exact lookup")
    outcomes = []
    for seq, item, got in read:
        base = ItemOutcome(seq=seq, key=item.key, path=item.path, item_id=item.item_id,
                           caption=item.caption, sha256=got.sha256, size=got.size,
                           url=item.url)
        try:
            outcomes.append(_match_item(base, got.data, got.error, exact, matcher, config))
        except Exception as exc:  # one undecodable item must not stop a 10,000-item job
            log.exception("clearance item %s", item.path)
            reason = f"{item.path}: cannot process item ({type(exc).__name__}: {exc})"
            outcomes.append(replace(base, error=reason))
    return outcomes


def _match_item(
    base: ItemOutcome,
    data: bytes | None,
    read_error: str | None,
    exact: dict[str, tuple[int, str]],
    matcher: Matcher | None,
    config: WorkerConfig,
) -> ItemOutcome:
    if data is None:
        return replace(base, error=read_error)
    name = base.path
    base = replace(base, signals=read_opt_out_signals(data, use=config.use))
    if base.sha256 in exact:
        asset_id, sha = exact[base.sha256]
        match = {"asset_id": asset_id, "asset_sha256": sha, "signal": EXACT_SIGNAL,
                 "distance": 0, "confidence": 1.0, "region": None, "time_s": None,
                 "transform": "identical", "kind": "copy"}
        return replace(base, matches=[match], thumbnail=_thumbnail(data, name, config))
    if matcher is None:
        return replace(base, error=_probe_error(data, name, config))
    result = matcher.match_file(data, name=name, max_bytes=config.max_bytes,
                                max_pixels=config.max_pixels)
    if result.error:
        return replace(base, error=str(result.error))
    matches = _best_per_asset([_jsonable(m.as_dict()) for m in result.matches])
    thumb = _thumbnail(data, name, config) if matches else None
    return replace(base, matches=matches, thumbnail=thumb)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- parent side -----------------------------------------------------------------------------


class Decider:
    """Policy decisions for matched assets, cached per asset for one job."""

    def __init__(self, policies: PolicySet, *, use: str, licensee: str,
                 model_family: str | None) -> None:
        self.policies = policies
        self.use = use
        self.licensee = licensee
        self.model_family = model_family
        self._cache: dict[int, dict[str, Any]] = {}

    def decide(self, session: Session, asset_id: int) -> dict[str, Any]:
        if asset_id in self._cache:
            return self._cache[asset_id]
        asset = session.get(Asset, asset_id)
        if asset is None:
            result = {"decision": "review", "explanation": f"asset {asset_id} is no longer in "
                      "the catalog: a person must decide", "rule": None, "decided_by": None}
        else:
            result = self._decide_asset(asset)
        self._cache[asset_id] = result
        return result

    def _decide_asset(self, asset: Asset) -> dict[str, Any]:
        from registry.policy import AssetFacts, Use

        decision = self.policies.decide(
            AssetFacts.from_asset(asset),
            licensee=self.licensee,
            use=Use(self.use),
            model_family=self.model_family,
        )
        reasons = [c.reason for c in decision.explanation if c.applied]
        if not reasons:
            reasons = [c.reason for c in decision.explanation]
        explanation = decision.summary + (": " + "; ".join(reasons) if reasons else "")
        return {
            "decision": str(decision.outcome),
            "explanation": explanation,
            "rule": str(decision.rule),
            "decided_by": decision.decided_by,
        }


def decide_match(decider: Decider, session: Session, match: dict[str, Any]) -> dict[str, Any]:
    """The match with its decision. Policy decides copies and derivatives; a `similar` match (a
    hash near its threshold that no stage verified) always goes to review, with what the policy
    would say if it is the asset: it never blocks nor clears on its own."""
    decision = decider.decide(session, int(match["asset_id"]))
    if match.get("kind") != "similar":
        return {**match, **decision}
    return {**match, "decision": "review", "rule": None, "decided_by": None,
            "policy_decision": decision["decision"],
            "explanation": "similar, not verified (a hash near its threshold): a person decides "
                           f"whether this is the asset; if it is, {decision['decision']}: "
                           f"{decision['explanation']}"}


def verdict_for(
    error: str | None, matches: Sequence[dict[str, Any]],
    signals: Sequence[dict[str, Any]] = (),
) -> Verdict:
    """`error` if unreadable; `blocked` if any match is denied; `review` if any needs review;
    otherwise `clear` (no studio content, or every match allowed).

    Opt-out signals the item carries count when no studio licence decided the item: the most
    restrictive wins (notAllowed -> blocked, constrained -> review). A studio licence that allows
    every match grants the use and so outranks the file's own signals (DESIGN.md).
    """
    if error:
        return Verdict.error
    outcomes = {m.get("decision") for m in matches}
    if "denied" in outcomes:
        return Verdict.blocked
    if outcomes - {"allowed"}:
        return Verdict.review
    if not matches:
        signal = most_restrictive(list(signals))
        if signal == "notAllowed":
            return Verdict.blocked
        if signal == "constrained":
            return Verdict.review
    return Verdict.clear


def policy_versions_of(policies: Any) -> list[dict[str, Any]]:
    versions = []
    for v in getattr(policies, "versions", ()) or ():
        data = v.as_dict() if hasattr(v, "as_dict") else (
            v._asdict() if hasattr(v, "_asdict") else dict(getattr(v, "__dict__", {})))
        versions.append({"file": str(data.get("file")), "sha256": str(data.get("sha256"))})
    return sorted(versions, key=lambda d: (d["file"], d["sha256"]))


def catalog_snapshot(session: Session) -> dict[str, Any]:
    """What the catalog was when the job ran: asset count, highest id, digest of every sha256."""
    digest = hashlib.sha256()
    count = 0
    for (sha,) in session.execute(select(Asset.sha256).order_by(Asset.sha256)):
        digest.update(sha.encode() + b"\n")
        count += 1
    max_id = session.scalar(select(func.max(Asset.id)))
    return {"assets": count, "max_asset_id": max_id, "assets_sha256": digest.hexdigest()}


def submit_job(
    session: Session,
    *,
    dataset: Dataset,
    use: str,
    licensee: str,
    model_family: str | None = None,
    owner: str,
    owner_key_id: int | None = None,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_workers: int | None = None,
    actor: Actor | str | None = None,
    engine: str = "local",
) -> ClearanceJob:
    """Record a new clearance job (status pending). Raises InvalidInput for a bad parameter
    (engine "ray" when Ray is not installed: it is the optional extra clearhouse[ray]).

    `workers` is capped at `max_workers` (the server's setting) and, for the local engine, at
    this machine's CPU count: a caller may ask for 64 processes, the job gets what the machine
    can hold (Ray actors spread over a cluster).
    """
    if use not in USES:
        raise InvalidInput(f"use {use!r} is not one of {', '.join(USES)}")
    if not licensee.strip():
        raise InvalidInput("licensee must not be empty")
    if workers < 1 or workers > 64:
        raise InvalidInput("workers must be between 1 and 64")
    if batch_size < 1 or batch_size > 10_000:
        raise InvalidInput("batch size must be between 1 and 10000")
    if engine not in ENGINES:
        raise InvalidInput(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidInput("the ray engine is not installed here: "
                           "pip install 'clearhouse[ray]' (or make ray)")
    workers = min(workers, max_workers or workers)
    if engine == "local":
        workers = min(workers, os.cpu_count() or 1)
    job = ClearanceJob(
        engine=engine,
        status=JobStatus.pending.value,
        dataset_uri=dataset.uri,
        dataset_kind=dataset.kind,
        dataset_options={**dataset.options, "allowed_roots": list(dataset.allowed_roots)},
        use=use,
        licensee=licensee.strip(),
        model_family=(model_family or None),
        owner=owner,
        owner_key_id=owner_key_id,
        workers=workers,
        batch_size=batch_size,
        done_items=0,
        policy_versions=[],
        catalog_snapshot={},
    )
    session.add(job)
    session.flush()
    record(session, actor=actor or owner, action="clearance.submit", subject=f"clearance:{job.id}",
           dataset=job.dataset_uri, use=use, licensee=job.licensee, model=job.model_family,
           workers=workers)
    return job


def get_job(session: Session, job_id: int) -> ClearanceJob:
    job = session.get(ClearanceJob, job_id)
    if job is None:
        raise NotFound("clearance job", job_id)
    return job


def dataset_of(job: ClearanceJob) -> Dataset:
    options = dict(job.dataset_options or {})
    roots = tuple(options.pop("allowed_roots", []) or [])
    return Dataset(job.dataset_uri, job.dataset_kind, options, roots)  # type: ignore[arg-type]


def _batches(
    items: Sequence[tuple[int, DatasetItem]], size: int
) -> Iterator[list[tuple[int, DatasetItem]]]:
    for start in range(0, len(items), size):
        yield list(items[start: start + size])


Guard = Callable[[Session], None]


def _commit_batch(
    factory: sessionmaker[Session], job_id: int, outcomes: Sequence[ItemOutcome], decider: Decider,
    guard: Guard | None = None,
) -> int:
    """Commit one batch (idempotent: keys already committed are skipped, so a retry after a lost
    connection writes no duplicate). Raises JobCancelled if the job was cancelled meanwhile."""
    return int(with_db_retry(lambda: _commit_batch_once(factory, job_id, outcomes, decider, guard),
                             what=f"clearance job {job_id}"))


def _commit_batch_once(
    factory: sessionmaker[Session], job_id: int, outcomes: Sequence[ItemOutcome], decider: Decider,
    guard: Guard | None,
) -> int:
    with session_scope(factory) as session:
        if guard is not None:
            guard(session)  # the worker's lease: raises (nothing written) if it was taken over
        if get_job(session, job_id).status == JobStatus.cancelled.value:
            raise JobCancelled(job_id)
        existing = set(session.scalars(
            select(ClearanceItem.item_key).where(
                ClearanceItem.job_id == job_id,
                ClearanceItem.item_key.in_([o.key for o in outcomes]),
            )
        ))
        added = 0
        for o in outcomes:
            if o.key in existing:
                continue  # another runner committed it first
            matches = [decide_match(decider, session, m) for m in o.matches]
            verdict = verdict_for(o.error, matches, o.signals).value
            session.add(ClearanceItem(
                job_id=job_id, item_key=o.key, seq=o.seq, path=o.path, item_id=o.item_id, url=o.url,
                caption=o.caption, sha256=o.sha256, size_bytes=o.size, machine_verdict=verdict,
                verdict=verdict, matches=matches, error=o.error, thumbnail=o.thumbnail,
                signals=o.signals,
            ))
            added += 1
        session.flush()
        done = session.scalar(
            select(func.count()).select_from(ClearanceItem).where(ClearanceItem.job_id == job_id)
        )
        job = get_job(session, job_id)
        job.done_items = int(done or 0)
        return job.done_items


def _finish(factory: sessionmaker[Session], job_id: int, guard: Guard | None = None) -> None:
    with_db_retry(lambda: _finish_once(factory, job_id, guard), what=f"clearance job {job_id}")


def _finish_once(factory: sessionmaker[Session], job_id: int, guard: Guard | None) -> None:
    with session_scope(factory) as session:
        if guard is not None:
            guard(session)
        job = get_job(session, job_id)
        if job.status == JobStatus.cancelled.value:
            raise JobCancelled(job_id)
        rows = session.execute(
            select(ClearanceItem.sha256, ClearanceItem.item_key).where(
                ClearanceItem.job_id == job_id)
        )
        job.dataset_digest = dataset_digest([item_digest(sha, key) for sha, key in rows])
        job.status = JobStatus.finished.value
        job.finished_at = utcnow()
        job.error = None


ProgressFn = Callable[[int, int], None]


def run_job(
    factory: sessionmaker[Session],
    job_id: int,
    *,
    config: WorkerConfig,
    policies: PolicySet,
    matcher: Matcher | None,
    on_progress: ProgressFn | None = None,
    guard: Guard | None = None,
) -> None:
    """Run (or resume) job `job_id` to the end, committing each batch as it finishes.

    `guard(session)` runs first in every commit's transaction (queue.Heartbeat.guard: the
    worker's lease); what it raises stops the job with nothing of that batch written.

    `policies` is a registry.policy PolicySet; `matcher` a registry.fingerprint Matcher (see
    load_matcher; None matches exact copies of catalog files only). Raises NotFound for an
    unknown job, Conflict if the job is already finished or the policies changed since it
    started, InvalidInput if the dataset can no longer be read (the job is then marked failed).
    """
    try:
        _run_job(factory, job_id, config=config, policies=policies, matcher=matcher,
                 on_progress=on_progress, guard=guard)
    except JobCancelled:
        log.info("clearance job %s was cancelled", job_id)
    except LeaseLost:
        raise  # another worker took the job over: not a failure of the job
    except (NotFound, Conflict):
        raise  # nothing was started: the job is as it was
    except Exception as exc:
        # Whatever stopped the job (a dataset that cannot be read, a bug): the job ends `failed`
        # with the reason, so it is not retried at every start, and the error still propagates.
        reason = exc.message if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, RegistryError):
            log.exception("clearance job %s failed", job_id)
        mark_failed(factory, job_id, reason)
        raise


def mark_failed(factory: sessionmaker[Session], job_id: int, reason: str) -> None:
    """Record that job `job_id` stopped for `reason` (unless a person cancelled it meanwhile)."""

    def write() -> None:
        with session_scope(factory) as session:
            job = get_job(session, job_id)
            if job.status != JobStatus.cancelled.value:
                job.status, job.error = JobStatus.failed.value, reason[:4000]

    with_db_retry(write, what=f"clearance job {job_id}")


def _run_job(
    factory: sessionmaker[Session],
    job_id: int,
    *,
    config: WorkerConfig,
    policies: PolicySet,
    matcher: Matcher | None,
    on_progress: ProgressFn | None = None,
    guard: Guard | None = None,
) -> None:
    versions = policy_versions_of(policies)
    with session_scope(factory) as session:
        job = get_job(session, job_id)
        if job.status == JobStatus.finished.value:
            raise Conflict(f"clearance job {job_id} is already finished")
        if job.status == JobStatus.cancelled.value:
            raise Conflict(f"clearance job {job_id} was cancelled; submit a new job")
        if job.started_at is None:
            job.started_at = utcnow()
            job.policy_versions = versions
            job.catalog_snapshot = catalog_snapshot(session)
            if hasattr(policies, "files"):  # keep the text of every policy file the job used
                from registry.policy import record_policy_versions

                record_policy_versions(session, policies)
        elif job.policy_versions != versions:
            raise Conflict(
                f"the policy files changed since clearance job {job_id} started; "
                "submit a new job to clear the dataset under the new terms",
                detail={"started_with": job.policy_versions, "now": versions},
            )
        job.status = JobStatus.running.value
        dataset = dataset_of(job)
        use, licensee, model = job.use, job.licensee, job.model_family
        workers, batch_size, engine = job.workers, job.batch_size, job.engine
    items = dataset.items()
    with session_scope(factory) as session:
        job = get_job(session, job_id)
        job.total_items = len(items)
        committed = set(session.scalars(
            select(ClearanceItem.item_key).where(ClearanceItem.job_id == job_id)))
    pending = [(seq, item) for seq, item in enumerate(items) if item.key not in committed]
    done = len(items) - len(pending)
    if on_progress is not None:
        on_progress(done, len(items))
    decider = Decider(policies, use=use, licensee=licensee, model_family=model)
    config = replace(config, use=use)
    batches = list(_batches(pending, batch_size))

    def commit(outcomes: Sequence[ItemOutcome]) -> None:
        done = _commit_batch(factory, job_id, outcomes, decider, guard)
        if on_progress is not None:
            on_progress(done, len(items))

    if engine == "ray" and batches:
        from registry.clearance.ray_engine import run_on_ray

        run_on_ray(batches, config=config, matcher=matcher, actors=workers, commit=commit)
    elif workers <= 1 or len(batches) <= 1:
        _worker_init(config, matcher)
        for batch in batches:
            commit(process_batch(batch))
    else:
        _run_pool(config, matcher, batches, workers, commit)
    _finish(factory, job_id, guard)


def _run_pool(
    config: WorkerConfig,
    matcher: Any | None,
    batches: Sequence[list[tuple[int, DatasetItem]]],
    workers: int,
    commit: Callable[[Sequence[ItemOutcome]], None],
) -> None:
    # spawn: a worker never inherits the parent's database connections or library threads.
    context = multiprocessing.get_context("spawn")
    in_flight_limit = workers * 2
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_worker_init, initargs=(config, matcher, True)) as pool:
        queue = iter(batches)
        running: set[Future[list[ItemOutcome]]] = set()
        for batch in queue:
            running.add(pool.submit(process_batch, batch))
            if len(running) >= in_flight_limit:
                break
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                commit(future.result())
                following = next(queue, None)
                if following is not None:
                    running.add(pool.submit(process_batch, following))


def cancel_job(session: Session, job_id: int, *, actor: Actor | str) -> ClearanceJob:
    """Stop a pending or running job: a running one stops after its current batch; committed
    items stay. Raises NotFound, or Conflict for a job that already ended."""
    job = get_job(session, job_id)
    if job.status not in (JobStatus.pending.value, JobStatus.running.value):
        raise Conflict(f"clearance job {job_id} is {job.status}; only a pending or running job "
                       "can be cancelled")
    previous = job.status
    job.status = JobStatus.cancelled.value
    job.finished_at = utcnow()
    session.flush()
    record(session, actor=actor, action="clearance.cancel", subject=f"clearance:{job_id}",
           previous_status=previous, done_items=job.done_items)
    return job


def unfinished_jobs(session: Session) -> list[ClearanceJob]:
    """Jobs a restarted worker should pick up: pending or running (killed mid-run)."""
    query = select(ClearanceJob).where(
        ClearanceJob.status.in_([JobStatus.pending.value, JobStatus.running.value])
    ).order_by(ClearanceJob.id)
    return list(session.scalars(query))
