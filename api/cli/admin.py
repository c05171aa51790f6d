"""`clearhouse init|migrate|serve`: set up CLEARHOUSE_HOME, run migrations, start the API."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from api.cli.context import (
    JsonOpt,
    announce_new_home,
    console,
    emit_json,
    handle_errors,
    open_registry,
)
from registry.settings import get_settings


@handle_errors
def init(as_json: JsonOpt = False) -> None:
    """Create CLEARHOUSE_HOME: the migrated database, the blob store and local signing keys."""
    reg = open_registry()
    reg.store.root.mkdir(parents=True, exist_ok=True)
    policies = reg.settings.policies_dir
    if policies == reg.settings.home / "policies":
        policies.mkdir(exist_ok=True)  # the default place for licence policy files
    info: dict[str, object] = {
        "home": str(reg.settings.home.resolve()),
        "database": reg.engine.url.render_as_string(hide_password=True),
        "blobs": str(reg.store.root.resolve()),
        "policies": str(policies.resolve()),
    }
    try:
        from registry.provenance.keys import ensure_studio_keys
    except ImportError:  # provenance not installed in this build
        pass
    else:
        keys = ensure_studio_keys(reg.settings.keys_dir)
        info["keys"] = str(reg.settings.keys_dir.resolve())
        info["keys_created"] = keys.created
    if as_json:
        emit_json(info)
    else:
        for k, v in info.items():  # soft_wrap: a path is never broken across lines
            console.print(f"[bold]{k}[/]: {v}", highlight=False, soft_wrap=True)


@handle_errors
def migrate_cmd() -> None:
    """Bring the database to the current schema (Alembic upgrade head)."""
    reg = open_registry()
    console.print(f"database at head: {reg.engine.url.render_as_string(hide_password=True)}")


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    with_worker: Annotated[bool, typer.Option(
        "--with-worker", help="Also start one `clearhouse worker` process (stopped with the "
        "server); the API itself then only enqueues jobs.")] = False,
) -> None:
    """Start the HTTP API (and console) with uvicorn."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    announce_new_home(settings)
    sys.stderr.write(f"registry home {settings.home.resolve()}, policies "
                     f"{settings.policies_dir.resolve()}\n")
    if not with_worker:
        uvicorn.run(create_app(settings), host=host, port=port)
        return
    app = create_app(settings.model_copy(update={"embedded_worker": False}))
    # A process of its own, as on a worker machine: it inherits this environment (home, URL).
    child = subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "worker"])
    sys.stderr.write(f"clearance worker started (pid {child.pid})\n")
    try:
        uvicorn.run(app, host=host, port=port)
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


@handle_errors
def worker(
    exit_when_idle: Annotated[bool, typer.Option(
        "--exit-when-idle", help="Stop when no job is left instead of waiting for more.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 1.0,
    lease: Annotated[float | None, typer.Option(
        help="Lease length in seconds (CLEARHOUSE_WORKER_LEASE_S, default 30): a job whose "
             "worker died is taken over this long after its last heartbeat.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run queued clearance jobs: claims jobs from the database (several workers may share one
    PostgreSQL) and holds each by a lease."""
    import logging
    import signal
    import threading

    from api.worker import work
    from registry.clearance.queue import new_worker_id

    reg = open_registry()
    settings = reg.settings
    if lease is not None:
        settings = settings.model_copy(update={"worker_lease_s": lease})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    owner = new_worker_id()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the batch in hand, then stop
        signal.signal(sig, lambda *_: stop.set())
    sys.stderr.write(f"clearance worker {owner} on "
                     f"{reg.engine.url.render_as_string(hide_password=True)}\n")
    ran = work(reg.factory, settings, owner=owner, exit_when_idle=exit_when_idle, poll_s=poll,
               stop=stop)
    if as_json:
        emit_json({"worker": owner, "jobs": ran})


@handle_errors
def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="Delete orphan and half-written blobs.")]
    = False,
    grace: Annotated[float, typer.Option(help="Keep files younger than this many seconds "
                                         "(an upload may still be committing).")] = 900.0,
    as_json: JsonOpt = False,
) -> None:
    """Check the blob store against the database: orphan blobs (no row names them), half-written
    files of killed writes, and asset rows whose blob is missing. Exit 1 if anything is wrong
    (after --fix: if rows without blobs remain)."""
    from registry.catalog.doctor import check_store, remove_orphans

    reg = open_registry()
    with reg.session() as session:
        check = check_store(session, reg.store)
    removed = remove_orphans(check, grace_s=grace) if fix else []
    data = {**check.as_dict(), "removed": [str(p) for p in removed]}
    if as_json:
        emit_json(data)
    else:
        console.print(f"{check.blobs} blobs; {len(check.orphans)} orphan(s), "
                      f"{len(check.partial)} half-written, {len(check.missing)} row(s) without "
                      f"a blob; {len(removed)} removed", highlight=False)
        for row in check.missing:
            console.print(f"missing blob: asset {row['asset_id']} sha256 {row['sha256']}",
                          highlight=False)
    left = len(check.orphans) + len(check.partial) - len(removed)
    if check.missing or left:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("migrate")(migrate_cmd)
    app.command("serve")(serve)
    app.command("doctor")(doctor)
    app.command("worker")(worker)
