"""`clearhouse assets|franchises|rightsholders|licences ...`"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from api.cli.context import (
    JsonOpt,
    cli_actor,
    console,
    emit_json,
    err_console,
    fail,
    handle_errors,
    make_table,
    open_registry,
    plain,
    progress,
)
from registry import catalog
from registry.catalog.importer import ImportOptions, ImportResult, expand_paths

assets_app = typer.Typer(help="Register and look up studio assets.", no_args_is_help=True)
franchises_app = typer.Typer(help="Franchises: groups of assets.", no_args_is_help=True)
rightsholders_app = typer.Typer(help="Rightsholders: who owns the rights.", no_args_is_help=True)
licences_app = typer.Typer(help="Licences between rightsholders and licensees.",
                           no_args_is_help=True)



def _asset_dict(asset: catalog.Asset) -> dict[str, object]:
    return {
        "id": asset.id,
        "kind": asset.kind,
        "title": asset.title,
        "sha256": asset.sha256,
        "size_bytes": asset.size_bytes,
        "width": asset.width,
        "height": asset.height,
        "duration_s": asset.duration_s,
        "media_type": asset.media_type,
        "rightsholder": asset.rightsholder.name,
        "franchise": asset.franchise.name if asset.franchise else None,
        "tags": asset.tags,
        "created_at": asset.created_at.isoformat(),
    }


@assets_app.command("import")
@handle_errors
def import_assets(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    rightsholder: Annotated[str, typer.Option(help="Rightsholder name (created if new).")],
    franchise: Annotated[str | None, typer.Option(help="Franchise name (created if new).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag for every file; repeatable.")] = None,
    sidecar: Annotated[
        Path | None, typer.Option(help="CSV/JSON giving per-file title, franchise and tags.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes fingerprinting ahead of the imports "
                                      "(default: one per core, at most 8).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import files and folders into the catalog (idempotent: same bytes, same asset).
    Fingerprints are computed in worker processes; each file is registered in its own
    transaction."""

    from registry.fingerprint import weak_reasons
    from registry.fingerprint.service import import_prepared, prepare_features

    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or folder")
    reg = open_registry()
    options = ImportOptions(
        rightsholder=rightsholder,
        franchise=franchise,
        tags=tag or [],
        sidecar=catalog.read_sidecar(sidecar) if sidecar else {},
        max_bytes=reg.settings.max_upload_bytes,
        max_pixels=reg.settings.max_image_pixels,
        actor=cli_actor(),
    )
    files = expand_paths(paths)
    results: list[ImportResult] = []
    started = time.monotonic()
    with progress() as bar:
        task = bar.add_task("importing", total=len(files), rate="")
        prepared = prepare_features(files, workers=workers, max_bytes=options.max_bytes,
                                    max_pixels=options.max_pixels)
        for path, ready in zip(files, prepared, strict=True):
            results.append(import_prepared(reg.factory, reg.store, path, options, ready))
            rate = len(results) / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=1, rate=f"{rate:.1f} files/s")
    counts = {s: sum(r.status == s for r in results) for s in ("created", "existing", "error")}
    with reg.session() as session:
        reasons = weak_reasons(session, [r.asset_id for r in results
                                         if r.status == "created" and r.asset_id is not None])
    weak = [{"path": r.path, "asset_id": r.asset_id, "reason": reasons[r.asset_id]}
            for r in results if r.asset_id in reasons and r.status == "created"]
    if as_json:
        emit_json({"imported": [r.as_dict() for r in results], "summary": counts,
                   "weak": weak})
    else:
        for r in results:
            if r.status == "error":
                err_console.print(f"[red]error[/] {r.error}", highlight=False, soft_wrap=True)
        for w in weak:
            err_console.print(f"[yellow]weakly protectable[/] {w['path']} (asset "
                              f"{w['asset_id']}): {w['reason']}", highlight=False,
                              soft_wrap=True)
        console.print(
            f"imported {len(results)} file(s): [green]{counts['created']} created[/], "
            f"{counts['existing']} existing, [red]{counts['error']} error(s)[/]"
        )
    if counts["error"]:
        raise typer.Exit(1)


@assets_app.command("list")
@handle_errors
def list_assets(
    franchise: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    q: Annotated[str | None, typer.Option(help="Substring of the title.")] = None,
    offset: int = 0,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """List assets, with filters and paging."""
    reg = open_registry()
    with reg.session() as session:
        fid = catalog.get_franchise(session, franchise).id if franchise else None
        where = catalog.AssetFilter(franchise_id=fid, tag=tag, q=q)
        rows, total = catalog.list_assets(session, where=where, offset=offset, limit=limit)
        items = [_asset_dict(a) for a in rows]
    if as_json:
        emit_json({"items": items, "total": total, "offset": offset, "limit": limit})
        return
    table = make_table("id", "title", "kind", "size", "franchise", "tags", "sha256",
                  title=f"{len(items)} of {total} assets")
    for a in items:
        table.add_row(str(a["id"]), str(a["title"]), str(a["kind"]),
                      f"{a['width']}x{a['height']}", str(a["franchise"] or ""),
                      ", ".join(a["tags"]),  # type: ignore[arg-type]
                      str(a["sha256"])[:12])
    console.print(table)


@assets_app.command("show")
@handle_errors
def show_asset(
    key: Annotated[str, typer.Argument(help="Asset id or sha256.")], as_json: JsonOpt = False
) -> None:
    """Show one asset."""
    reg = open_registry()
    with reg.session() as session:
        data = _asset_dict(catalog.get_asset(session, key))
    if as_json:
        emit_json(data)
    else:
        for k, v in data.items():
            console.print(f"[bold]{k}[/]: {plain(v)}", highlight=False)


@franchises_app.command("list")
@handle_errors
def list_franchises(as_json: JsonOpt = False) -> None:
    """List franchises."""
    reg = open_registry()
    with reg.session() as session:
        rows = [{"id": f.id, "name": f.name, "rightsholder": f.rightsholder.name}
                for f in catalog.list_franchises(session)]
    if as_json:
        emit_json({"franchises": rows})
        return
    table = make_table("id", "name", "rightsholder")
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]), str(r["rightsholder"]))
    console.print(table)


@franchises_app.command("create")
@handle_errors
def create_franchise(
    name: str, rightsholder: Annotated[str, typer.Option()], as_json: JsonOpt = False
) -> None:
    """Create a franchise owned by an existing rightsholder."""
    reg = open_registry()
    with reg.session() as session:
        holder = catalog.get_rightsholder(session, rightsholder)
        row = catalog.create_franchise(session, name=name, rightsholder=holder,
                                       actor=cli_actor())
        data = {"id": row.id, "name": row.name, "rightsholder": holder.name}
    emit_json(data) if as_json else console.print(f"created franchise {row.id} {row.name!r}")


@rightsholders_app.command("list")
@handle_errors
def list_rightsholders(as_json: JsonOpt = False) -> None:
    """List rightsholders."""
    reg = open_registry()
    with reg.session() as session:
        rows = [{"id": r.id, "name": r.name} for r in catalog.list_rightsholders(session)]
    if as_json:
        emit_json({"rightsholders": rows})
        return
    table = make_table("id", "name")
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]))
    console.print(table)


@rightsholders_app.command("create")
@handle_errors
def create_rightsholder(name: str, as_json: JsonOpt = False) -> None:
    """Create a rightsholder."""
    reg = open_registry()
    with reg.session() as session:
        row = catalog.create_rightsholder(session, name=name, actor=cli_actor())
        data = {"id": row.id, "name": row.name}
    emit_json(data) if as_json else console.print(f"created rightsholder {row.id} {row.name!r}")


@licences_app.command("list")
@handle_errors
def list_licences(
    licensee: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False
) -> None:
    """List licences recorded in the catalog."""
    reg = open_registry()
    with reg.session() as session:
        rows = [
            {"id": r.id, "name": r.name, "licensor": r.licensor.name, "licensee": r.licensee,
             "valid_from": r.valid_from, "valid_to": r.valid_to, "scope": r.scope,
             "policy_file": r.policy_file}
            for r in catalog.list_licences(session, licensee=licensee)
        ]
    if as_json:
        emit_json({"licences": rows})
        return
    table = make_table("id", "name", "licensor", "licensee", "valid", "policy file")
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]), str(r["licensor"]), str(r["licensee"]),
                      f"{r['valid_from'] or '-'} .. {r['valid_to'] or '-'}",
                      str(r["policy_file"] or ""))
    console.print(table)


@licences_app.command("create")
@handle_errors
def create_licence(
    name: str,
    licensor: Annotated[str, typer.Option(help="Rightsholder name.")],
    licensee: Annotated[str, typer.Option(help="Licensee name or '*'.")],
    franchise: Annotated[
        list[str] | None, typer.Option(help="Scope: franchise; repeatable.")
    ] = None,
    valid_from: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    valid_to: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    policy_file: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a licence in the catalog (its terms live in policies/)."""
    reg = open_registry()
    with reg.session() as session:
        holder = catalog.get_rightsholder(session, licensor)
        row = catalog.create_licence(
            session, name=name, licensor=holder, licensee=licensee,
            scope={"franchises": franchise or []},
            valid_from=valid_from.date() if valid_from else None,
            valid_to=valid_to.date() if valid_to else None,
            policy_file=policy_file, actor=cli_actor(),
        )
        data = {"id": row.id, "name": row.name}
    emit_json(data) if as_json else console.print(f"created licence {row.id} {row.name!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(assets_app, name="assets")
    app.add_typer(franchises_app, name="franchises")
    app.add_typer(rightsholders_app, name="rightsholders")
    app.add_typer(licences_app, name="licences")
