"""`clearhouse audit verify|list`: read and check the hash-chained audit log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli.context import JsonOpt, console, emit_json, err_console, handle_errors, open_registry
from registry.audit import event_dict, events, verify_log

audit_app = typer.Typer(help="The audit log: who did what, when; tamper-evident.",
                        no_args_is_help=True)


@audit_app.command("verify")
@handle_errors
def verify(as_json: JsonOpt = False) -> None:
    """Check every entry of the audit log against its hash chain; exit 1 if anything was edited,
    removed or forged."""
    reg = open_registry()
    with reg.session() as session:
        check = verify_log(session)
    if as_json:
        emit_json(check.as_dict())
    elif check.ok:
        console.print(f"audit log intact: {check.entries} entries, head "
                      f"{check.head_hash[:16]}", highlight=False)
    else:
        for problem in check.problems:
            err_console.print(f"[red]entry {problem.get('seq')}[/]: {problem['problem']}",
                              highlight=False)
        err_console.print(f"[red]audit log is NOT intact[/]: {len(check.problems)} problem(s) "
                          f"in {check.entries} entries", highlight=False)
    if not check.ok:
        raise typer.Exit(1)


@audit_app.command("list")
@handle_errors
def list_events(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    subject: Annotated[str | None, typer.Option(help="e.g. clearance:12")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. clearance.review")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest entries first."""
    reg = open_registry()
    with reg.session() as session:
        rows = [event_dict(e) for e in events(session, subject=subject, action=action,
                                              limit=limit)]
    if as_json:
        emit_json({"events": rows})
        return
    table = Table("seq", "at", "actor", "role", "action", "subject")
    for r in rows:
        table.add_row(str(r["seq"]), r["at"][:19], f"{r['actor']} ({r['actor_key_id'] or '-'})",
                      str(r["actor_role"] or ""), r["action"], r["subject"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
