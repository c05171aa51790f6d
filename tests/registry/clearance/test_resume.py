"""Killing a running clearance (SIGKILL of the real `clearhouse clear` process and its workers)
and resuming it: committed batches are kept, nothing is duplicated, and the finished report equals
an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.models import ClearanceItem, ClearanceJob
from registry.errors import Conflict
from registry.policy import load_policies
from tests.registry.clearance import scenario

CLI = str(Path(sys.executable).parent / "clearhouse")
EXTRA_ITEMS = 12
KILL_AFTER_ITEMS = 4
WAIT_LIMIT_S = 120


def _env(home: Path, db_url: str, policies: Path) -> dict[str, str]:
    return {**os.environ, "CLEARHOUSE_HOME": str(home), "CLEARHOUSE_DATABASE_URL": db_url,
            "CLEARHOUSE_POLICIES_DIR": str(policies)}


def _progress(factory: sessionmaker[Session]) -> tuple[int | None, int]:
    with factory() as session:
        job_id = session.scalar(select(func.max(ClearanceJob.id)))
        if job_id is None:
            return None, 0
        done = session.scalar(select(func.count()).select_from(ClearanceItem)
                              .where(ClearanceItem.job_id == job_id))
        return job_id, int(done or 0)


@pytest.mark.slow
def test_a_killed_job_resumes_without_redoing_batches_and_reports_like_an_uninterrupted_run(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], home: Path,
    store: BlobStore,
) -> None:
    scenario.import_catalog(session_factory, store)
    policies = scenario.write_policies(tmp_path / "policies")
    dataset = scenario.write_large_dataset(tmp_path / "dataset", EXTRA_ITEMS)
    total = len(scenario.EXPECTED) + EXTRA_ITEMS
    env = _env(home, db_url, policies)

    args = [CLI, "clear", str(dataset), "--use", "ai_training", "--licensee", scenario.LICENSEE,
            "--workers", "2", "--batch-size", "2", "--json"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + WAIT_LIMIT_S
    job_id, done = None, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            job_id, done = _progress(session_factory)
            if done >= KILL_AFTER_ITEMS:
                break
            time.sleep(0.02)
    finally:
        # Power loss: the parent and its worker processes die at once, mid-batch.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    job_id, done = _progress(session_factory)
    assert job_id is not None
    assert KILL_AFTER_ITEMS <= done < total, f"kill came too late: {done}/{total} committed"
    with session_factory() as session:
        job = clearance.get_job(session, job_id)
        assert job.status == "running"
        before = {(r.id, r.item_key, r.sha256, r.verdict) for r in clearance.list_items(
            session, job_id)}

    resumed = subprocess.run([CLI, "clear", "--resume", str(job_id), "--json"], env=env,
                             capture_output=True, text=True, timeout=WAIT_LIMIT_S)
    assert resumed.returncode == 1, resumed.stderr  # blocked items present
    report = json.loads(resumed.stdout)
    assert report["job"]["status"] == "finished"
    assert report["summary"]["total"] == total
    with session_factory() as session:
        rows = clearance.list_items(session, job_id)
        after = {(r.id, r.item_key, r.sha256, r.verdict) for r in rows}
    assert before <= after  # committed rows untouched: not redone, not rewritten
    assert len(rows) == len({r.item_key for r in rows}) == total

    reference = clearance.clear_dataset(
        session_factory, dataset, use="ai_training", licensee=scenario.LICENSEE, owner="ref",
        policies=load_policies(policies), database_url=db_url, index_dir=home / "index",
    )
    assert clearance.comparable(report) == clearance.comparable(reference.report)
    verdicts = {i["key"]: i["verdict"] for i in report["items"]}
    assert {k: verdicts[k] for k in scenario.EXPECTED} == scenario.EXPECTED


def test_the_same_item_cannot_be_written_twice_for_a_job(session: Session, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    job = clearance.submit_job(session, dataset=clearance.open_dataset(tmp_path / "d"),
                               use="ai_training", licensee="x", owner="me")
    for _ in range(2):
        session.add(ClearanceItem(job_id=job.id, item_key="a.jpg", seq=0, path="a.jpg",
                                  machine_verdict="clear", verdict="clear", matches=[]))
    with pytest.raises(IntegrityError):
        session.flush()


def test_resuming_a_finished_job_redoes_nothing_and_returns_its_report(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((scenario.write_dataset(tmp_path / "ds") / "other/horse.jpg")
                                   .read_bytes())
    result = clearance.clear_dataset(
        session_factory, folder, use="ai_training", licensee="x", owner="me",
        policies=load_policies(scenario.write_policies(tmp_path / "p")), database_url=db_url,
        index_dir=tmp_path / "index", fingerprint=False)
    assert result.summary["total"] == 1
    again = clearance.resume_job(session_factory, result.job_id, policies=None,
                                 database_url=db_url, index_dir=tmp_path / "index",
                                 fingerprint=False)
    assert again.report == result.report
    with session_factory() as session, pytest.raises(Conflict, match="already finished"):
        clearance.run_job(session_factory, result.job_id,
                          config=clearance.WorkerConfig(db_url), policies=None, matcher=None)
        session.rollback()
