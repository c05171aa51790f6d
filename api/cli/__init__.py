"""The `clearhouse` command line (Typer + Rich). One module per area adds its commands.

`clearhouse --help` must answer at once, so the root is a small Click group that knows the
command names and their one-line help (COMMANDS) and imports the areas, with their heavy
libraries (SQLAlchemy, NumPy, OpenCV, c2pa...), only when a command runs.
tests/cli/test_newcomer.py checks that COMMANDS matches the real commands.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import typer

HELP = "Clearhouse: the registry studios trust for licensing their content to AI."
# Every top-level command and its one-line help, in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "init": "Create CLEARHOUSE_HOME: the migrated database, the blob store and local signing "
            "keys.",
    "migrate": "Bring the database to the current schema (Alembic upgrade head).",
    "serve": "Start the HTTP API (and console) with uvicorn.",
    "worker": "Run queued clearance jobs: claims jobs from the database (several workers may "
              "share one PostgreSQL) and holds each by a lease.",
    "assets": "Register and look up studio assets.",
    "franchises": "Franchises: groups of assets.",
    "rightsholders": "Rightsholders: who owns the rights.",
    "licences": "Licences between rightsholders and licensees.",
    "keys": "API keys (roles) and the studio's signing keys.",
    "policy": "Licence policies: check, load, explain decisions, export.",
    "match": "Find catalog assets in files: prints per file the matches (kind: copy, "
             "derivative or similar; signal, distance, confidence, region or time code) or "
             "'no match'. Exit code 1 if any file could not be read.",
    "fingerprint": "Fingerprints of the catalog and their index.",
    "clear": "Clear a dataset for a use: per-item verdicts, a report, and an exit code (0 "
             "clear, 1 blocked, 2 review, 3 unreadable items).",
    "clearances": "Clearance jobs: list, show, report, resume, cancel.",
    "review": "Legal review of clearance items left in `review`.",
    "certificate": "Signed clearance certificates (in-toto / DSSE).",
    "summary": "Data for the EU AI Act public summary of training content (Commission "
               "template, July 2025): what the registry knows, and the fields left for the "
               "provider.",
    "sign": "Sign generated media with a C2PA manifest: actions, ingredients, training "
            "permissions.",
    "verify": "Verify a file's C2PA manifest against the trust anchors, and match it to the "
              "catalog.",
    "doctor": "Check the blob store against the database: orphan blobs (no row names them), "
              "half-written files of killed writes, and asset rows whose blob is missing.",
    "audit": "The audit log: who did what, when; tamper-evident.",
}


def build_app() -> typer.Typer:
    """The whole Typer app, every area imported."""
    import typer

    from api.cli import (
        admin,
        audit,
        catalog,
        clearance,
        cleared,
        fingerprint,
        keys,
        policy,
        provenance,
    )

    app = typer.Typer(name="clearhouse", help=HELP, no_args_is_help=True,
                      pretty_exceptions_enable=False)
    for module in (admin, catalog, keys, policy, fingerprint, clearance, cleared, provenance,
                   audit):
        module.register(app)
    return app


class LazyRoot(click.Group):
    """The root's help and its "no such command" from COMMANDS alone (main() hands a known
    command to the real app)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The first sentence of each, wrapped to the terminal (never cut).
        rows = [(name, text.split(". ")[0].rstrip(".")) for name, text in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


root = LazyRoot(name="clearhouse", help=HELP + "\n\nRun `clearhouse COMMAND --help` for a "
                "command's options.", no_args_is_help=True)


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in COMMANDS:
        build_app()(prog_name="clearhouse")
        return
    root.main(prog_name="clearhouse")


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app, for tests (typer.testing.CliRunner)
        return build_app()
    raise AttributeError(name)
