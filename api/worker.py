"""Running queued clearance jobs from the doors: `clearhouse worker` processes and the API's
embedded worker share this (the queue itself, claims and leases, is registry/clearance/queue.py).
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.db import session_scope
from registry.errors import RegistryError
from registry.settings import Settings

log = logging.getLogger("clearhouse.worker")


def run_queued_job(
    factory: sessionmaker[Session], settings: Settings, job_id: int, owner: str
) -> None:
    """Run one job this worker has claimed, to its end. A job that cannot go on (its dataset is
    gone, the policies changed, a bug) is marked failed with the reason; a lost lease is not the
    job's fault and leaves it to the worker that took it over (queue.LeaseLost propagates)."""
    from registry.policy import load_policies

    try:
        policies = load_policies(settings.policies_dir)
    except RegistryError as exc:
        with session_scope(factory) as session:
            clearance.fail_job(session, job_id, owner=owner, reason=exc.message)
        return
    try:
        clearance.resume_job(
            factory, job_id, policies=policies,
            database_url=settings.resolved_database_url, index_dir=settings.home / "index",
            max_distance=settings.pdq_match_distance, max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels, worker_id=owner,
            lease_s=settings.worker_lease_s, ray_address=settings.ray_address,
        )
    except RegistryError as exc:  # written on the job by resume_job: the worker goes on
        log.warning("clearance job %s failed: %s", job_id, exc.message)
    finally:
        drop_finished_upload(factory, settings, job_id)


def drop_finished_upload(factory: sessionmaker[Session], settings: Settings, job_id: int) -> None:
    """An uploaded archive is kept only while its job may still read it (pending, running)."""
    uploads = (settings.jobs_dir / "uploads").resolve()
    with session_scope(factory) as session:
        job = clearance.get_job(session, job_id)
        if job.status in (clearance.JobStatus.pending.value, clearance.JobStatus.running.value):
            return
        folder = Path(job.dataset_uri).parent
    if folder.parent == uploads:
        shutil.rmtree(folder, ignore_errors=True)


def work(
    factory: sessionmaker[Session], settings: Settings, *, owner: str | None = None,
    exit_when_idle: bool = False, poll_s: float = 1.0, stop: threading.Event | None = None,
) -> int:
    """Claim and run queued jobs (see registry.clearance.queue.run_worker)."""

    def ran(job_id: int, took: str) -> None:
        log.info("clearance job %s done in %s", job_id, took)

    return clearance.run_worker(
        factory, lambda job_id, who: run_queued_job(factory, settings, job_id, who),
        owner=owner, lease_s=settings.worker_lease_s, poll_s=poll_s,
        exit_when_idle=exit_when_idle, stop=stop, on_job=ran,
    )


def run_accepted_job(factory: sessionmaker[Session], settings: Settings, job_id: int) -> None:
    """The embedded worker: run a job the API just accepted, in this process, if no other
    worker has claimed it first."""
    owner = clearance.new_worker_id("api")
    with session_scope(factory) as session:
        claimed = clearance.claim_job(session, owner=owner, lease_s=settings.worker_lease_s,
                                      job_id=job_id)
    if claimed is None:
        return
    try:
        run_queued_job(factory, settings, job_id, owner)
    except Exception:  # a bug: the job is marked failed with the reason; keep the server up
        log.exception("clearance job %s stopped", job_id)
