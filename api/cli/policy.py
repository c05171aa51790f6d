"""`clearhouse policy ...`: check, load, list, explain and export licence policies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.tree import Tree

from api.cli.context import (
    JsonOpt,
    console,
    emit_json,
    fail,
    handle_errors,
    make_table,
    open_registry,
)
from registry import catalog
from registry.audit import record
from registry.policy import (
    AssetFacts,
    Decision,
    PolicySet,
    Use,
    check_policies,
    load_policies,
    policy_json_schema,
    record_policy_versions,
    to_odrl,
)
from registry.settings import get_settings

policy_app = typer.Typer(help="Licence policies: check, load, explain decisions, export.",
                         no_args_is_help=True)

DirArg = Annotated[
    Path | None,
    typer.Argument(help="Policies directory (default: CLEARHOUSE_POLICIES_DIR, else policies/ "
                        "in the home)."),
]
DirOpt = Annotated[Path | None, typer.Option("--dir", help="Policies directory.")]

OUTCOME_STYLE = {"allowed": "green", "denied": "red", "review": "yellow"}


def _dir(directory: Path | None) -> Path:
    return directory if directory is not None else get_settings().policies_dir


def _policy_rows(policy_set: PolicySet) -> list[dict[str, Any]]:
    rows = []
    for terms in policy_set.policies:
        version = policy_set.version_of(terms.id)
        rows.append({
            "id": terms.id,
            "title": terms.title,
            "licensor": terms.licensor,
            "licensee": terms.licensee,
            "from": terms.period.from_.isoformat() if terms.period.from_ else None,
            "to": terms.period.to.isoformat() if terms.period.to else None,
            "grants": [
                {"use": str(g.use), "permission": str(g.permission)} for g in terms.grants
            ],
            "file": version.file,
            "sha256": version.sha256,
        })
    return rows


@policy_app.command("schema")
@handle_errors
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
) -> None:
    """Print the JSON Schema of a policy file."""
    text = json.dumps(policy_json_schema(), indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


@policy_app.command("check")
@handle_errors
def check(directory: DirArg = None, as_json: JsonOpt = False) -> None:
    """Validate every policy file; report each error as file:line: field: message."""
    path = _dir(directory)
    problems = check_policies(path)
    if as_json:
        emit_json({"directory": str(path), "valid": not problems,
                   "errors": [p.as_dict() for p in problems]})
    elif problems:
        for p in problems:
            typer.echo(f"error: {path / str(p)}", err=True)
    else:
        policy_set = load_policies(path)
        console.print(f"{len(policy_set)} policies in {len(policy_set.versions)} file(s): "
                      "[green]all valid[/]")
    if problems:
        raise typer.Exit(1)


@policy_app.command("list")
@handle_errors
def list_policies(directory: DirArg = None, as_json: JsonOpt = False) -> None:
    """List the policies in the directory with their file versions."""
    policy_set = load_policies(_dir(directory))
    rows = _policy_rows(policy_set)
    if as_json:
        emit_json({"policies": rows, "versions": [v.as_dict() for v in policy_set.versions]})
        return
    table = make_table("id", "licensor", "licensee", "period", "grants", "file", "sha256")
    for r in rows:
        grants = ", ".join(f"{g['use']}: {g['permission']}" for g in r["grants"])
        period = f"{r['from'] or '...'} to {r['to'] or '...'}"
        table.add_row(r["id"], r["licensor"], r["licensee"], period, grants, r["file"],
                      r["sha256"][:12])
    console.print(table)


@handle_errors
def load(
    directory: DirArg = None,
    sync_licences: Annotated[
        bool, typer.Option(help="Also record each policy as a licence in the catalog.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Validate the policies and record each file's version (sha256, load time) in the database.

    Nothing is recorded if any file is invalid.
    """
    policy_set = load_policies(_dir(directory))
    reg = open_registry()
    synced: list[str] = []
    skipped: list[str] = []
    with reg.session() as session:
        rows = record_policy_versions(session, policy_set)
        if sync_licences:
            for terms in policy_set.policies:
                licensor = catalog.find_rightsholder(session, terms.licensor)
                known = {lic.name for lic in catalog.list_licences(session)}
                if licensor is None or terms.id in known:
                    skipped.append(terms.id)
                    continue
                catalog.create_licence(
                    session, name=terms.id, licensor=licensor, licensee=terms.licensee,
                    scope=terms.scope.model_dump(mode="json"),
                    valid_from=terms.period.from_, valid_to=terms.period.to,
                    territories=terms.territories, model_families=terms.model_families,
                    policy_file=policy_set.version_of(terms.id).file, notes=terms.title,
                )
                synced.append(terms.id)
        record(session, actor="cli", action="policy.load", subject="policies",
               versions=[v.as_dict() for v in policy_set.versions])
        versions = [{"file": r.file, "sha256": r.sha256, "loaded_at": r.loaded_at.isoformat()}
                    for r in rows]
    if as_json:
        emit_json({"versions": versions, "licences_created": synced,
                   "licences_skipped": skipped})
        return
    for v in versions:
        console.print(f"loaded {v['file']} [dim]{v['sha256'][:12]}[/]", highlight=False)
    console.print(f"{len(policy_set)} policies in force; {len(synced)} licence(s) added to the "
                  "catalog")


policy_app.command("load")(load)
policy_app.command("reload", help="Same as `load`: validate and record the policy files again.")(
    load
)


def _tree(decision: Decision) -> Tree:
    style = OUTCOME_STYLE[str(decision.outcome)]
    tree = Tree(f"[bold {style}]{decision.outcome}[/] [dim]({decision.rule})[/]  "
                f"{decision.use} of asset {decision.asset_id} for {decision.licensee} "
                f"on {decision.on}", highlight=False)
    if decision.decided_by:
        v = decision.decided_by_version
        where = f" in {v.file} @ {v.sha256[:12]}" if v else ""
        tree.add(f"decided by [bold]{decision.decided_by}[/]{where}")
    elif str(decision.rule) == "rights_reserved":
        tree.add("no applicable grant: [bold]rights reserved[/]")
    by_policy: dict[str, Tree] = {}
    for clause in decision.explanation:
        node = by_policy.get(clause.policy_id)
        if node is None:
            node = tree.add(f"[bold]{clause.policy_id}[/] [dim]{clause.file}[/]")
            by_policy[clause.policy_id] = node
        mark = "[green]applied[/]" if clause.applied else "[dim]not applied[/]"
        what = clause.grant or "licence"
        node.add(f"{what}: {mark}: {clause.reason}", highlight=False)
    if not decision.explanation:
        tree.add("[dim]no policy of this rightsholder was found[/]")
    return tree


@policy_app.command("explain")
@handle_errors
def explain(
    asset: Annotated[str, typer.Option(help="Asset id or sha256.")],
    licensee: Annotated[str, typer.Option(help="Who wants to use it.")],
    use: Annotated[Use, typer.Option(help="The intended use.")],
    on: Annotated[str | None, typer.Option(help="Date of the use, YYYY-MM-DD (default today).")]
    = None,
    model_family: Annotated[str | None, typer.Option(help="Model family of the use.")] = None,
    territory: Annotated[str | None, typer.Option(help="ISO 3166 code of the territory.")]
    = None,
    resolution: Annotated[
        int | None, typer.Option(help="Largest side in px the licensee will use.")
    ] = None,
    attribution: Annotated[
        bool, typer.Option("--attribution", help="The licensee will credit the rightsholder.")
    ] = False,
    directory: DirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide one use of one asset and show why, as a tree (or JSON)."""
    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError:
        fail(f"--on {on!r} is not a date (YYYY-MM-DD)")
    policy_set = load_policies(_dir(directory))
    reg = open_registry()
    with reg.session() as session:
        facts = AssetFacts.from_asset(catalog.get_asset(session, asset))
    decision = policy_set.decide(
        facts, licensee=licensee, use=use, on=day, model_family=model_family,
        territory=territory, resolution=resolution, attribution=attribution or None,
    )
    if as_json:
        emit_json(decision.as_dict())
    else:
        console.print(_tree(decision))


@policy_app.command("export")
@handle_errors
def export(
    policy_id: Annotated[str | None, typer.Argument(help="One policy id (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format: odrl.")] = "odrl",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
    directory: DirOpt = None,
) -> None:
    """Export licences as ODRL 2.2 JSON-LD (one policy, or a JSON list of all)."""
    if fmt != "odrl":
        fail(f"unknown export format {fmt!r} (supported: odrl)")
    policy_set = load_policies(_dir(directory))
    data: Any = (
        to_odrl(policy_set.get(policy_id)) if policy_id
        else [to_odrl(t) for t in policy_set.policies]
    )
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(policy_app, name="policy")
