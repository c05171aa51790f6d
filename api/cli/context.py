"""What every CLI command needs: settings, the migrated database, the blob store, output helpers.

Errors the core raises on purpose become one red line on stderr and exit code 1 (or the code the
command chooses); no traceback for a user's mistake.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.audit import Actor
from registry.catalog import BlobStore
from registry.db import make_engine, make_session_factory, migrate, session_scope
from registry.errors import RegistryError
from registry.files import ensure_private_dir
from registry.settings import Settings, get_settings

# The --json flag every command that prints data takes.
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Registry:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    store: BlobStore

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.factory) as session:
            yield session


def open_registry(*, migrate_schema: bool = True) -> Registry:
    """The registry under CLEARHOUSE_HOME, its database brought to the current schema."""
    settings = get_settings()
    announce_new_home(settings)
    url = settings.resolved_database_url
    if migrate_schema:
        migrate(url)
    engine = make_engine(url)
    return Registry(settings, engine, make_session_factory(engine), BlobStore(settings.blobs_dir))


def announce_new_home(settings: Settings) -> None:
    """Create the home if it is missing, and say where (on stderr): a home that silently
    appears in whatever folder the command ran from is how a newcomer loses a registry."""
    if settings.home.is_dir():
        ensure_private_dir(settings.home)
        return
    ensure_private_dir(settings.home)
    sys.stderr.write(f"created a new registry home at {settings.home.resolve()} "
                     "(set CLEARHOUSE_HOME to use another)\n")


def cli_actor(name: str | None = None) -> Actor:
    """Who acts at the command line, for the audit log: `--as NAME`, else CLEARHOUSE_USER, else
    the login name; role `cli` (the command line has the database itself, no API key)."""
    if not name:
        try:
            name = os.environ.get("CLEARHOUSE_USER") or getpass.getuser()
        except (KeyError, OSError):
            name = "cli"
    return Actor(name, role="cli")


def fail(message: str, code: int = 1) -> NoReturn:
    # One plain line, never wrapped, so scripts can grep it.
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn RegistryError into a one-line error and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RegistryError as exc:
            fail(exc.message)

    return wrapper


def make_table(*headers: str, title: str | None = None) -> Table:
    """A table that fits the terminal: cells wrap, and a word too long for its column folds onto
    the next line instead of being cut with "…" (a cut id, path or status is no use)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def plain(value: Any) -> str:
    """A value as a person reads it: lists joined, mappings as key=value, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "-"
    return str(value)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def progress(*, transient: bool = False) -> Progress:
    """A Rich progress bar on a terminal; quiet when stderr is not a terminal."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )
