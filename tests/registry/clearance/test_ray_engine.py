"""The Ray engine on a local Ray runtime (2 CPUs, its files under the test's tmp path, nothing in
the home directory): the same dataset as the end-to-end test gives the local engine's report,
item for item. Ray is the optional extra clearhouse[ray]; `make test` installs it."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.errors import InvalidInput
from registry.policy import load_policies
from tests.registry.clearance import scenario

RAY_MISSING = importlib.util.find_spec("ray") is None
LOUD = ("!!! ray is not installed: the Ray engine test is SKIPPED. "
        "Run `make ray` (or `make test`, which installs the clearhouse[ray] extra) !!!")


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray runtime for this module; yields the home directory its processes see."""
    if RAY_MISSING:
        warnings.warn(LOUD, stacklevel=1)
        pytest.skip(LOUD)
    import ray

    root = tmp_path_factory.mktemp("ray")
    home = root / "home"
    home.mkdir()
    # Ray's unix sockets live under its temp dir, and a socket path has at most 107 bytes: a
    # pytest-xdist worker's tmp path is too deep for it.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))  # the driver and every Ray process
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # Token auth stays on; the token comes from here instead of a new ~/.ray/auth_token.
        patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        ray.init(num_cpus=2, _temp_dir=str(ray_tmp), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        try:
            yield home
        finally:
            ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)


# The Ray engine is checked on PostgreSQL only: a cluster shares one PostgreSQL (SQLite: the
# local engine), and Ray's start-up is slow.
ON_POSTGRESQL = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def pg_url(db_url: str) -> str:
    assert db_url.startswith("postgresql"), db_url
    return db_url


@pytest.mark.slow
@ON_POSTGRESQL
def test_the_ray_engine_reports_like_the_local_engine_item_for_item(
    pg_url: str, ray_runtime: Path, tmp_path: Path, session_factory: sessionmaker[Session],
    store: BlobStore,
) -> None:
    db_url = pg_url
    sc = scenario.build(tmp_path, session_factory, store)
    common = dict(use="ai_training", licensee=scenario.LICENSEE, model_family="lumen-vision-2",
                  owner="ml-team", policies=load_policies(sc.policies), database_url=db_url,
                  index_dir=tmp_path / "index", batch_size=4)
    local = clearance.clear_dataset(session_factory, sc.dataset, **common)  # type: ignore[arg-type]
    on_ray = clearance.clear_dataset(session_factory, sc.dataset, engine="ray", workers=2,
                                     **common)  # type: ignore[arg-type]
    with session_factory() as session:
        assert clearance.get_job(session, on_ray.job_id).engine == "ray"
        assert clearance.get_job(session, local.job_id).engine == "local"
    assert clearance.comparable(on_ray.report) == clearance.comparable(local.report)
    assert {i["key"]: i["verdict"] for i in on_ray.report["items"]} == scenario.EXPECTED
    assert on_ray.summary == local.summary == {"clear": 6, "blocked": 2, "review": 2,
                                               "error": 4, "total": 14}
    assert os.listdir(ray_runtime) == []  # nothing written in the home directory


def test_an_unknown_engine_is_refused(tmp_path: Path, session: Session) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidInput, match="engine 'spark' is not one of local, ray"):
        clearance.submit_job(session, dataset=clearance.open_dataset(tmp_path / "d"),
                             use="ai_training", licensee="x", owner="me", engine="spark")


def _map_actor_pids(home: Path) -> list[int]:
    """This test's Ray Data map actors: processes whose title names a MapWorker and whose HOME
    is the test runtime's (another Ray on the same machine, someone's benchmark, is left
    alone)."""
    ours = f"HOME={home}".encode()
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"MapWorker" in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                    ours in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


@pytest.mark.slow
@ON_POSTGRESQL
def test_killing_a_ray_actor_mid_job_loses_no_item_and_writes_none_twice(
    pg_url: str, ray_runtime: Path, tmp_path: Path, session_factory: sessionmaker[Session],
    store: BlobStore,
) -> None:
    scenario.import_catalog(session_factory, store)
    dataset = scenario.write_large_dataset(tmp_path / "dataset", 12)
    total = len(scenario.EXPECTED) + 12
    outcome: dict[str, object] = {}
    progress: list[int] = []

    def clear() -> None:
        try:
            outcome["result"] = clearance.clear_dataset(
                session_factory, dataset, use="ai_training", licensee=scenario.LICENSEE,
                owner="ml-team", policies=load_policies(scenario.write_policies(tmp_path / "p")),
                database_url=pg_url, index_dir=tmp_path / "index", batch_size=2, workers=2,
                engine="ray", on_progress=lambda done, _total: progress.append(done))
        except BaseException as exc:
            outcome["error"] = exc

    runner = threading.Thread(target=clear)
    runner.start()
    deadline = time.monotonic() + 300
    killed, killed_at = None, 0
    while killed is None and runner.is_alive() and time.monotonic() < deadline:
        pids = _map_actor_pids(ray_runtime)
        if pids and progress and progress[-1] >= 2:  # mid-job: some blocks committed
            killed, killed_at = pids[0], progress[-1]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    runner.join(300)
    assert killed is not None, f"no actor to kill while the job ran (progress {progress})"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, clearance.Clearance)
    assert killed_at < total == progress[-1]  # killed mid-job, finished all the same
    with session_factory() as session:
        rows = clearance.list_items(session, result.job_id)
    assert len(rows) == len({r.item_key for r in rows}) == total  # every item exactly once
    assert {k: v for k, v in ((r.item_key, r.verdict) for r in rows)
            if k in scenario.EXPECTED} == scenario.EXPECTED
