"""Clearance services other code calls: jobs, listing, legal review, and the one-call clearance.

Service functions take a Session first and never commit; `run_job` (runner.py) and `clear_dataset`
below are the exceptions by nature: they own a session factory because they commit per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from registry.audit import Actor, as_actor, record
from registry.clearance.datasets import open_dataset
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.queue import (
    LEASE_S,
    Heartbeat,
    LeaseLost,
    claim_job,
    fail_job,
    holder_is_gone,
    new_worker_id,
    release_lease,
    take_over,
)
from registry.clearance.reports import build_report
from registry.clearance.runner import (
    DEFAULT_BATCH_SIZE,
    ProgressFn,
    WorkerConfig,
    get_job,
    load_matcher,
    run_job,
    submit_job,
)
from registry.db import parse_row_id, session_scope, utcnow
from registry.errors import Conflict, InvalidInput, NotFound, RegistryError

REVIEW_DECISIONS = ("allowed", "blocked")


def list_jobs(
    session: Session, *, owner_key_id: int | None = None, limit: int = 100
) -> list[ClearanceJob]:
    """Newest first; `owner_key_id` limits to one API key's jobs."""
    query = select(ClearanceJob).order_by(ClearanceJob.id.desc()).limit(limit)
    if owner_key_id is not None:
        query = query.where(ClearanceJob.owner_key_id == owner_key_id)
    return list(session.scalars(query))


def get_item(session: Session, job_id: int, item: int | str) -> ClearanceItem:
    """An item of a job by row id or by item key. Raises NotFound."""
    query = select(ClearanceItem).where(ClearanceItem.job_id == job_id)
    row_id = parse_row_id(item)
    if row_id is not None:
        found = session.scalar(query.where(ClearanceItem.id == row_id))
        if found is not None:
            return found
    found = session.scalar(query.where(ClearanceItem.item_key == str(item)))
    if found is not None:
        return found
    matches = find_items(session, job_id, str(item))
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} items of clearance job {job_id} have {item!r}; name one "
                       "by its item number or key", detail={"keys": [m.item_key for m in
                                                                      matches[:20]]})
    if not matches:
        raise NotFound("clearance item", item)
    return matches[0]


def find_items(session: Session, job_id: int, ref: str) -> list[ClearanceItem]:
    """Items of a job by item key, URL or content sha256 (verdicts are keyed by all three), in
    dataset order."""
    ref = ref.strip()
    condition = or_(ClearanceItem.item_key == ref, ClearanceItem.url == ref)
    if len(ref) == 64 and all(c in "0123456789abcdefABCDEF" for c in ref):
        condition = or_(condition, ClearanceItem.sha256 == ref.lower())
    return list(session.scalars(select(ClearanceItem).where(
        ClearanceItem.job_id == job_id, condition).order_by(ClearanceItem.seq)))


def list_items(
    session: Session, job_id: int, *, verdict: str | None = None, limit: int | None = None
) -> list[ClearanceItem]:
    query = select(ClearanceItem).where(ClearanceItem.job_id == job_id).order_by(
        ClearanceItem.seq)
    if verdict is not None:
        query = query.where(ClearanceItem.verdict == verdict)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def review_item(
    session: Session,
    *,
    job_id: int,
    item: int | str,
    decision: str,
    comment: str,
    actor: Actor | str,
) -> ClearanceItem:
    """Legal decides an item the engine left in `review`: `allowed` makes it clear, `blocked`
    blocks it. The decision, who made it and why go to the audit log.

    Raises InvalidInput (bad decision, empty comment), NotFound, or Conflict (the item was not
    sent to review, or the job's certificate was already issued).
    """
    if decision not in REVIEW_DECISIONS:
        raise InvalidInput(f"decision {decision!r} is not one of {', '.join(REVIEW_DECISIONS)}")
    if not comment or not comment.strip():
        raise InvalidInput("a review decision needs a comment saying why")
    job = get_job(session, job_id)
    if job.certificate is not None:
        raise Conflict(f"clearance job {job_id} is already certified; submit a new job")
    row = get_item(session, job_id, item)
    if row.machine_verdict != Verdict.review.value:
        raise Conflict(
            f"item {row.item_key!r} is {row.machine_verdict}, not awaiting review",
            detail={"verdict": row.machine_verdict},
        )
    previous = row.verdict
    row.review_decision = decision
    row.reviewed_by = as_actor(actor).name
    row.reviewed_at = utcnow()
    row.review_comment = comment.strip()
    row.verdict = Verdict.clear.value if decision == "allowed" else Verdict.blocked.value
    record(
        session,
        actor=actor,
        action="clearance.review",
        subject=f"clearance:{job_id}/item:{row.id}",
        item_key=row.item_key,
        sha256=row.sha256,
        decision=decision,
        comment=row.review_comment,
        previous_verdict=previous,
        verdict=row.verdict,
        assets=[m.get("asset_id") for m in row.matches],
    )
    session.flush()
    return row


@dataclass(frozen=True)
class Clearance:
    """What `clear_dataset` returns: the job id and its JSON report."""

    job_id: int
    report: dict[str, Any]

    @property
    def summary(self) -> dict[str, int]:
        summary: dict[str, int] = self.report["summary"]
        return summary

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.summary)


def exit_code_for(summary: dict[str, int]) -> int:
    """0 all clear; 1 any blocked; 2 any in review (and none blocked); 3 only errors besides
    clear items."""
    if summary.get("blocked"):
        return 1
    if summary.get("review"):
        return 2
    if summary.get("error"):
        return 3
    return 0


def clear_dataset(
    factory: sessionmaker[Session],
    dataset: Path | str,
    *,
    use: str,
    licensee: str,
    model_family: str | None = None,
    owner: str,
    policies: Any,
    database_url: str,
    index_dir: Path,
    max_distance: int = 31,
    max_bytes: int = 50 * 1024 * 1024,
    max_pixels: int = 100_000_000,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allowed_roots: Sequence[Path] | None = None,
    item_roots: Sequence[Path] = (),
    images_dir: Path | None = None,
    manifest_columns: dict[str, str] | None = None,
    fingerprint: bool = True,
    on_progress: ProgressFn | None = None,
    actor: Actor | str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> Clearance:
    """Submit, run and report a clearance in one call (the CLI, the demo and tests use it).
    The job is leased to this caller in the transaction that submits it, so no `clearhouse
    worker` watching the same database takes it."""
    opened = open_dataset(dataset, allowed_roots=allowed_roots, item_roots=item_roots,
                          images_dir=images_dir, **(manifest_columns or {}))
    runner = new_worker_id("clear")
    with session_scope(factory) as session:
        job_id = submit_job(session, dataset=opened, use=use, licensee=licensee,
                            model_family=model_family, owner=owner, workers=workers,
                            batch_size=batch_size, actor=actor, engine=engine).id
        claim_job(session, owner=runner, job_id=job_id)
    # A new job is a job with nothing committed yet: running it is resuming it.
    return resume_job(factory, job_id, policies=policies, database_url=database_url,
                      index_dir=index_dir, max_distance=max_distance, max_bytes=max_bytes,
                      max_pixels=max_pixels, fingerprint=fingerprint, on_progress=on_progress,
                      worker_id=runner, ray_address=ray_address)


def resume_job(
    factory: sessionmaker[Session],
    job_id: int,
    *,
    policies: Any,
    database_url: str,
    index_dir: Path,
    max_distance: int = 31,
    max_bytes: int = 50 * 1024 * 1024,
    max_pixels: int = 100_000_000,
    fingerprint: bool = True,
    on_progress: ProgressFn | None = None,
    worker_id: str | None = None,
    lease_s: float = LEASE_S,
    ray_address: str | None = None,
) -> Clearance:
    """Finish a killed (or never started) job; committed batches are not redone. A finished job
    is left as it is and its report returned (resuming is idempotent).

    The caller runs the job under a lease (queue.py) held as `worker_id` (a new id when None),
    renewed by a heartbeat and checked at every batch commit. Raises Conflict when a live
    worker holds the job; queue.LeaseLost if another worker took it over meanwhile.
    """
    owner = worker_id or new_worker_id("resume")
    with session_scope(factory) as session:
        job = get_job(session, job_id)
        if job.status == JobStatus.finished.value:
            return Clearance(job_id, build_report(session, job))
        claimed = claim_job(session, owner=owner, lease_s=lease_s, job_id=job_id) is not None
        if not claimed and holder_is_gone(job.lease_owner):  # killed on this machine
            claimed = take_over(session, job_id, owner=owner, dead_owner=str(job.lease_owner),
                                lease_s=lease_s)
        if not claimed:
            raise Conflict(f"clearance job {job_id} is {job.status} and being run by "
                           f"{job.lease_owner} (lease until {job.lease_expires_at})")
    try:
        with session_scope(factory) as session:
            matcher = (load_matcher(session, index_dir=index_dir, max_distance=max_distance)
                       if fingerprint else None)
        config = WorkerConfig(database_url, max_bytes=max_bytes, max_pixels=max_pixels,
                              ray_address=ray_address)
        with Heartbeat(factory, job_id, owner=owner, lease_s=lease_s) as heartbeat:
            run_job(factory, job_id, config=config, policies=policies, matcher=matcher,
                    on_progress=on_progress, guard=heartbeat.guard)
    except LeaseLost:
        raise  # the job goes on in the worker that took it over
    except Exception as exc:
        # Whatever stopped the job (a dataset gone, policies changed, a bug) is written on it,
        # so it is not taken again and again by every worker; `clear --resume` retries it.
        reason = exc.message if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
        with session_scope(factory) as session:
            fail_job(session, job_id, owner=owner, reason=reason)
        raise
    finally:
        with session_scope(factory) as session:
            release_lease(session, job_id, owner=owner)
    with session_scope(factory) as session:
        return Clearance(job_id, build_report(session, get_job(session, job_id)))
