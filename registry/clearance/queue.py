"""The job queue in the database: workers claim clearance jobs and hold them by a lease.

A job is runnable while it is `pending` or `running` and nobody holds a live lease on it. A worker
(`clearhouse worker`, the API's embedded worker, or `clearhouse clear` for the job it submits)
claims one with a conditional UPDATE; on PostgreSQL the candidate row is read with
`FOR UPDATE SKIP LOCKED`, so several workers on several machines never wait on one another.
SQLite has no row locks (SQLAlchemy renders no FOR UPDATE there): its writers are serialised, so
the conditional UPDATE alone keeps a claim exclusive; run one worker on SQLite.

While a job runs, a heartbeat thread pushes the lease forward every third of its length. A worker
that dies (kill -9, power loss) stops renewing; once its lease has expired another worker claims
the job and resumes it: committed batches are not redone (runner.run_job lists the committed keys).
Each batch commit first renews the lease *in its own transaction* (`hold_lease`), which takes the
job row's lock: a worker whose job was taken over cannot commit any more (it raises LeaseLost),
so no item row is written twice, and none is lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from registry.clearance.models import ClearanceJob, JobStatus
from registry.db import session_scope, utcnow

log = logging.getLogger("clearhouse.worker")

LEASE_S = 30.0  # a dead worker's job waits this long before another worker takes it over
RUNNABLE = (JobStatus.pending.value, JobStatus.running.value)


class LeaseLost(Exception):
    """This worker no longer holds the job's lease (another worker took it over): stop, commit
    nothing more. Not a RegistryError: the job itself is fine."""


def new_worker_id(kind: str = "worker") -> str:
    """host:pid:random, unique per running worker, readable in `clearances show`."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _free(owner: str, now: dt.datetime) -> Any:
    return or_(ClearanceJob.lease_owner.is_(None), ClearanceJob.lease_expires_at < now,
               ClearanceJob.lease_owner == owner)


def claim_job(
    session: Session, *, owner: str, lease_s: float = LEASE_S, job_id: int | None = None
) -> int | None:
    """Take the lease of the oldest runnable job (or of `job_id`) for `owner`; the id, or None
    when there is none free. The caller commits."""
    now = utcnow()
    # A job named explicitly (`clear --resume N`) may also be a failed one: that retries it.
    statuses = RUNNABLE if job_id is None else (*RUNNABLE, JobStatus.failed.value)
    query = (select(ClearanceJob.id)
             .where(ClearanceJob.status.in_(statuses), _free(owner, now))
             .order_by(ClearanceJob.id).limit(1)
             .with_for_update(skip_locked=True))
    if job_id is not None:
        query = query.where(ClearanceJob.id == job_id)
    picked = session.scalar(query)
    if picked is None:
        return None
    taken = session.execute(
        update(ClearanceJob)
        .where(ClearanceJob.id == picked, ClearanceJob.status.in_(statuses), _free(owner, now))
        .values(lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return picked if getattr(taken, "rowcount", 0) == 1 else None


def holder_is_gone(owner: str | None) -> bool:
    """True when `owner` (a new_worker_id) ran on this machine and its process no longer exists:
    its lease need not be waited out (a resumed kill -9 on one machine)."""
    if not owner or "@" not in owner:
        return False
    parts = owner.split("@", 1)[1].rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take_over(session: Session, job_id: int, *, owner: str, dead_owner: str,
              lease_s: float = LEASE_S) -> bool:
    """Move the lease from a worker known to be gone (holder_is_gone) to `owner`."""
    taken = session.execute(
        update(ClearanceJob)
        .where(ClearanceJob.id == job_id, ClearanceJob.lease_owner == dead_owner)
        .values(lease_owner=owner, lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return getattr(taken, "rowcount", 0) == 1


def hold_lease(session: Session, job_id: int, *, owner: str, lease_s: float = LEASE_S) -> None:
    """Renew the lease inside the caller's transaction (locking the job row until it commits).
    Raises LeaseLost when another worker holds it now."""
    renewed = session.execute(
        update(ClearanceJob)
        .where(ClearanceJob.id == job_id, ClearanceJob.lease_owner == owner)
        .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    if getattr(renewed, "rowcount", 0) != 1:
        raise LeaseLost(f"clearance job {job_id} was taken over by another worker")


def release_lease(session: Session, job_id: int, *, owner: str) -> None:
    session.execute(
        update(ClearanceJob)
        .where(ClearanceJob.id == job_id, ClearanceJob.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def fail_job(session: Session, job_id: int, *, owner: str, reason: str) -> None:
    """Mark the job failed with `reason`, if `owner` still holds it (a worker whose job was
    taken over must not overwrite the new run)."""
    session.execute(
        update(ClearanceJob)
        .where(ClearanceJob.id == job_id, ClearanceJob.lease_owner == owner,
               ClearanceJob.status != JobStatus.cancelled.value)
        .values(status=JobStatus.failed.value, error=reason[:4000])
        .execution_options(synchronize_session=False)
    )


class Heartbeat:
    """Renews a job's lease from a daemon thread while the job runs (`with Heartbeat(...)`)."""

    def __init__(self, factory: sessionmaker[Session], job_id: int, *, owner: str,
                 lease_s: float = LEASE_S) -> None:
        self.factory, self.job_id, self.owner, self.lease_s = factory, job_id, owner, lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with session_scope(self.factory) as session:
                    hold_lease(session, self.job_id, owner=self.owner, lease_s=self.lease_s)
            except LeaseLost:
                log.warning("lost the lease of clearance job %s", self.job_id)
                self.lost.set()
                return
            except Exception:  # the database is away for a moment: the next beat retries
                log.warning("lease renewal of clearance job %s failed", self.job_id,
                            exc_info=True)

    def guard(self, session: Session) -> None:
        """Called at the start of every batch commit (runner.run_job's `guard`)."""
        hold_lease(session, self.job_id, owner=self.owner, lease_s=self.lease_s)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


RunJob = Callable[[int, str], None]


def run_worker(
    factory: sessionmaker[Session],
    run: RunJob,
    *,
    owner: str | None = None,
    lease_s: float = LEASE_S,
    poll_s: float = 1.0,
    exit_when_idle: bool = False,
    stop: threading.Event | None = None,
    on_job: Callable[[int, str], None] | None = None,
) -> int:
    """Claim and run jobs until `stop` is set (or, with exit_when_idle, until none is left);
    the number of jobs run. `run(job_id, owner)` runs one claimed job to its end (see
    service.resume_job's worker_id). A job that fails is marked failed by `run`; a lost lease
    just moves on to the next job."""
    owner = owner or new_worker_id()
    stop = stop or threading.Event()
    ran = 0
    while not stop.is_set():
        with session_scope(factory) as session:
            job_id = claim_job(session, owner=owner, lease_s=lease_s)
        if job_id is None:
            if exit_when_idle:
                break
            stop.wait(poll_s)
            continue
        log.info("%s runs clearance job %s", owner, job_id)
        started = time.monotonic()
        try:
            run(job_id, owner)
        except LeaseLost as exc:
            log.warning("%s", exc)
            continue
        except Exception:  # the job is marked failed by `run`; the worker goes on
            log.exception("clearance job %s stopped", job_id)
        finally:
            with session_scope(factory) as session:
                release_lease(session, job_id, owner=owner)
        ran += 1
        if on_job is not None:
            on_job(job_id, f"{time.monotonic() - started:.1f}s")
    return ran
