"""The `clearhouse` command line (Typer + Rich). One module per area adds its commands."""

from __future__ import annotations

import typer

from api.cli import admin, catalog, clearance, cleared, fingerprint, keys, policy, provenance

app = typer.Typer(
    name="clearhouse",
    help="Clearhouse: the registry studios trust for licensing their content to AI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for module in (admin, catalog, keys, policy, fingerprint, clearance, cleared, provenance):
    module.register(app)


def main() -> None:
    app()
