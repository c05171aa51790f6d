"""`clearhouse keys ...`: API keys with roles (create, list, revoke).

The provenance area adds `keys show|rotate` for the studio's signing keys to the same group.
"""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.context import (
    JsonOpt,
    cli_actor,
    console,
    emit_json,
    handle_errors,
    make_table,
    open_registry,
)
from registry.access import Role, create_api_key, list_api_keys, revoke_api_key

keys_app = typer.Typer(help="API keys (roles) and the studio's signing keys.",
                       no_args_is_help=True)


@keys_app.command("create")
@handle_errors
def create(
    role: Annotated[str, typer.Option(help="admin, legal, ml or partner.")],
    name: Annotated[str, typer.Option(help="Who or what holds the key.")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    reg = open_registry()
    with reg.session() as session:
        row, plain = create_api_key(session, name=name, role=role, actor=cli_actor())
        data = {"key": plain, "prefix": row.prefix, "role": row.role, "name": row.name}
    if as_json:
        emit_json(data)
    else:
        console.print(f"created {row.role} key {row.prefix!r} for {name!r}; store it now, "
                      "it is not shown again:")
        console.print(plain, highlight=False, soft_wrap=True)


@keys_app.command("list")
@handle_errors
def list_keys(as_json: JsonOpt = False) -> None:
    """List API keys (never the secrets)."""
    reg = open_registry()
    with reg.session() as session:
        rows = [{"prefix": k.prefix, "name": k.name, "role": k.role,
                 "created_at": k.created_at.isoformat(),
                 "revoked": k.revoked_at is not None} for k in list_api_keys(session)]
    if as_json:
        emit_json({"keys": rows})
        return
    table = make_table("prefix", "name", "role", "created", "revoked")
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("prefix", "name", "role", "created_at", "revoked")))
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def revoke(prefix: str) -> None:
    """Revoke an API key by its prefix."""
    reg = open_registry()
    with reg.session() as session:
        revoke_api_key(session, prefix=prefix, actor=cli_actor())
    console.print(f"revoked key {prefix!r}")


ROLES = [r.value for r in Role]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
