"""`clearhouse worker` processes: jobs are enqueued in the database and claimed by workers (real
processes, real SQLite and PostgreSQL); a worker killed with SIGKILL mid-job has its job taken over
by another once its lease runs out, with every item written exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.models import ClearanceItem
from tests.registry.clearance import scenario

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).parent / "clearhouse")
WAIT_LIMIT_S = 180
LEASE_S = "2"


def _env(home: Path, db_url: str, policies: Path) -> dict[str, str]:
    return {**os.environ, "CLEARHOUSE_HOME": str(home), "CLEARHOUSE_DATABASE_URL": db_url,
            "CLEARHOUSE_POLICIES_DIR": str(policies)}


def _enqueue(factory: sessionmaker[Session], folder: Path, *, batch_size: int = 4) -> int:
    """What the API does on POST /v1/clearances when workers run the jobs: record it, no more."""
    with factory() as session:
        job = clearance.submit_job(session, dataset=clearance.open_dataset(folder),
                                   use="ai_training", licensee=scenario.LICENSEE, owner="test",
                                   batch_size=batch_size)
        session.commit()
        return job.id


def _items(factory: sessionmaker[Session], job_id: int) -> list[ClearanceItem]:
    with factory() as session:
        return clearance.list_items(session, job_id)


def _done(factory: sessionmaker[Session], job_id: int) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(ClearanceItem)
                                  .where(ClearanceItem.job_id == job_id)) or 0)


def _jobs_run_by(log: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in log.splitlines()
            if " runs clearance job " in line]


def test_two_workers_on_postgresql_share_a_queue_and_each_job_runs_once(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], home: Path,
    store: BlobStore,
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("several workers share a queue on PostgreSQL; SQLite runs one worker")
    scenario.import_catalog(session_factory, store)
    policies = scenario.write_policies(tmp_path / "policies")
    source = scenario.write_dataset(tmp_path / "source")
    photos = sorted(p for p in source.rglob("*.jpg"))[:6]
    job_ids = []
    for n in range(6):
        folder = tmp_path / f"dataset{n}"
        folder.mkdir()
        for photo in photos:
            shutil.copyfile(photo, folder / f"{photo.parent.name}-{photo.name}")
        job_ids.append(_enqueue(session_factory, folder, batch_size=2))
    env = _env(home, db_url, policies)
    workers = [subprocess.Popen([CLI, "worker", "--exit-when-idle", "--poll", "0.2"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    logs = [w.communicate(timeout=WAIT_LIMIT_S)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    ran = [_jobs_run_by(log) for log in logs]
    assert sorted(ran[0] + ran[1]) == job_ids  # every job run, and by one worker only
    assert ran[0] and ran[1], f"one worker took every job: {ran}"
    for job_id in job_ids:
        with session_factory() as session:
            job = clearance.get_job(session, job_id)
            assert (job.status, job.lease_owner) == ("finished", None), (job.error, logs)
        keys = [row.item_key for row in _items(session_factory, job_id)]
        assert len(keys) == len(set(keys)) == len(photos)


def test_a_killed_worker_job_is_taken_over_by_another_with_every_item_once(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], home: Path,
    store: BlobStore,
) -> None:
    scenario.import_catalog(session_factory, store)
    policies = scenario.write_policies(tmp_path / "policies")
    dataset = scenario.write_large_dataset(tmp_path / "dataset", 12)
    total = len(scenario.EXPECTED) + 12
    job_id = _enqueue(session_factory, dataset, batch_size=2)
    env = _env(home, db_url, policies)

    first = subprocess.Popen([CLI, "worker", "--lease", LEASE_S, "--poll", "0.2"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + WAIT_LIMIT_S
    try:
        while time.monotonic() < deadline and first.poll() is None and \
                _done(session_factory, job_id) < 4:
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker and anything it started, at once
        first.wait()
    done = _done(session_factory, job_id)
    assert 4 <= done < total, f"kill came too late: {done}/{total} committed"
    with session_factory() as session:
        job = clearance.get_job(session, job_id)
        assert job.status == "running"
        assert job.lease_owner is not None and f":{first.pid}:" in job.lease_owner
    before = {(r.id, r.item_key, r.sha256, r.verdict) for r in _items(session_factory, job_id)}

    second = subprocess.Popen([CLI, "worker", "--lease", LEASE_S, "--poll", "0.2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while time.monotonic() < deadline:
            with session_factory() as session:
                if clearance.get_job(session, job_id).status != "running":
                    break
            assert second.poll() is None, second.communicate()[1]
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)  # stops between jobs: it is idle now
        log = second.communicate(timeout=60)[1]
    assert second.returncode == 0, log
    assert _jobs_run_by(log) == [job_id]

    rows = _items(session_factory, job_id)
    after = {(r.id, r.item_key, r.sha256, r.verdict) for r in rows}
    assert before <= after  # committed rows kept as they were, not redone
    assert len(rows) == len({r.item_key for r in rows}) == total  # every item exactly once
    with session_factory() as session:
        job = clearance.get_job(session, job_id)
        assert (job.status, job.done_items, job.lease_owner) == ("finished", total, None)
    verdicts = {r.item_key: r.verdict for r in rows}
    assert {k: verdicts[k] for k in scenario.EXPECTED} == scenario.EXPECTED
