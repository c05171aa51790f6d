"""`clearhouse match ...` and `clearhouse fingerprint rebuild|reindex|status`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from api.cli.context import (
    JsonOpt,
    console,
    emit_json,
    err_console,
    fail,
    handle_errors,
    make_table,
    open_registry,
    progress,
)
from registry.catalog import expand_paths
from registry.fingerprint import (
    Matcher,
    MatchResult,
    build_index,
    index_status,
    match_paths,
    rebuild_fingerprints,
    stale_assets,
    weak_reasons,
)

fingerprint_app = typer.Typer(help="Fingerprints of the catalog and their index.",
                              no_args_is_help=True)

WorkersOpt = Annotated[
    int | None, typer.Option(help="Worker processes (default: one per core).", min=1)
]


def _where(m: dict[str, object]) -> str:
    parts = []
    if m.get("region"):
        parts.append("region " + ",".join(str(v) for v in m["region"]))  # type: ignore[attr-defined]
    if m.get("time_s") is not None:
        parts.append(f"t={m['time_s']}s")
    if m.get("transform"):
        parts.append(str(m["transform"]))
    return "; ".join(parts)


@handle_errors
def match(
    paths: Annotated[list[Path], typer.Argument(help="Image/video files or folders.")],
    workers: WorkersOpt = None,
    exhaustive: Annotated[
        bool, typer.Option(help="Always run the keypoint stage (finds several assets in a "
                           "collage; slower).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find catalog assets in files: prints per file the matches (kind: copy, derivative or
    similar; signal, distance, confidence, region or time code) or 'no match'. Exit code 1 if
    any file could not be read."""
    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or folder")
    reg = open_registry()
    files = expand_paths(paths)
    with reg.session() as session:
        matcher = Matcher.load(session, index_dir=reg.settings.home / "index",
                               max_distance=reg.settings.pdq_match_distance,
                               exhaustive=exhaustive)
    results: list[MatchResult] = []
    started = time.monotonic()
    with progress(transient=True) as bar:
        task = bar.add_task("matching", total=len(files), rate="")
        for result in match_paths(matcher, files, workers=workers,
                                  max_bytes=reg.settings.max_upload_bytes,
                                  max_pixels=reg.settings.max_image_pixels):
            results.append(result)
            rate = len(results) / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=1, rate=f"{rate:.1f} files/s")
    errors = sum(r.error is not None for r in results)
    if as_json:
        emit_json({"results": [r.as_dict() for r in results],
                   "summary": {"files": len(results),
                               "matched": sum(r.matched for r in results),
                               "errors": errors}})
    else:
        table = make_table("file", "asset", "kind", "signal", "distance", "confidence", "where")
        for r in results:
            if r.error:
                table.add_row(r.path, "[red]error[/]", "", "", "", "", r.error)
            elif not r.matches:
                table.add_row(r.path, "[dim]no match[/]", "", "", "", "", "")
            for m in r.matches:
                d = m.as_dict()
                table.add_row(r.path, f"{m.asset_id} {m.asset_sha256[:12]}", str(m.kind),
                              m.signal, str(m.distance), f"{m.confidence:.2f}", _where(d))
        console.print(table)
        console.print(f"{len(results)} file(s): {sum(r.matched for r in results)} matched, "
                      f"{errors} error(s)")
    if errors:
        raise typer.Exit(1)


@fingerprint_app.command("rebuild")
@handle_errors
def rebuild(
    missing: Annotated[
        bool, typer.Option("--missing", help="Only assets that have no fingerprints yet.")
    ] = False,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every asset's fingerprints from the blob store, then rebuild the index."""
    reg = open_registry()
    started = time.monotonic()
    with reg.session() as session, progress() as bar:
        task = bar.add_task("fingerprinting", total=None, rate="")

        def on_progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{rate:.1f} assets/s")

        summary = rebuild_fingerprints(session, store=reg.store, on_progress=on_progress,
                                       only_missing=missing, workers=workers)
    with reg.session() as session:
        # Every asset's rows were replaced: rebuild the stages rather than append.
        generation = build_index(session, reg.settings.home / "index")
    data = {**summary.as_dict(), "index": generation,
            "seconds": round(time.monotonic() - started, 2)}
    if as_json:
        emit_json(data)
    else:
        for asset_id, error in summary.errors:
            err_console.print(f"[red]error[/] asset {asset_id}: {error}", highlight=False)
        console.print(f"fingerprinted {summary.assets} asset(s): {summary.hashes} hashes, "
                      f"{summary.keypoints} keypoints; {len(summary.weak)} weakly protectable "
                      f"(flat or bare art: see fingerprint status); index {generation}")
    if summary.errors:
        raise typer.Exit(1)


@fingerprint_app.command("status")
@handle_errors
def status(as_json: JsonOpt = False) -> None:
    """Show the index: per stage, its segments and rows indexed against rows in the database;
    weakly protectable assets with the reason; assets whose fingerprints are stale."""
    reg = open_registry()
    with reg.session() as session:
        data = index_status(session, reg.settings.home / "index")
        reasons = weak_reasons(session)
        data["weak"] = sorted(reasons)
        data["weak_reasons"] = {str(a): why for a, why in sorted(reasons.items())}
        data["stale"] = stale_assets(session)
    if as_json:
        emit_json(data)
        return
    state = "current" if data["fresh"] else "behind the database (synced on the next match)"
    console.print(f"index generation {data['generation'] or '(none)'} under "
                  f"{data['index_dir']}: {state}")
    for name, stage in data["stages"].items():
        console.print(f"  {name}: {stage['indexed']} of {stage['database']} rows indexed in "
                      f"{stage['segments']} segment(s)")
    if data["stale"]:
        console.print(f"{len(data['stale'])} asset(s) with fingerprints of an older version "
                      "(not matched until `clearhouse fingerprint rebuild`): "
                      f"{data['stale'][:20]}")
    if reasons:
        console.print(f"{len(reasons)} weakly protectable asset(s):")
        for asset_id, why in sorted(reasons.items()):
            console.print(f"  asset {asset_id}: {why}", highlight=False)


@fingerprint_app.command("reindex")
@handle_errors
def reindex(as_json: JsonOpt = False) -> None:
    """Rebuild every stage's index from the database (maintenance: after the catalog grew many
    times over, the approximate indexes are re-sized for it). Imports never need this."""
    reg = open_registry()
    started = time.monotonic()
    with reg.session() as session:
        generation = build_index(session, reg.settings.home / "index")
        data = index_status(session, reg.settings.home / "index")
    data["seconds"] = round(time.monotonic() - started, 2)
    data["generation"] = generation
    if as_json:
        emit_json(data)
        return
    console.print(f"rebuilt index generation {generation} in {data['seconds']} s")


def register(app: typer.Typer) -> None:
    app.command("match")(match)
    app.add_typer(fingerprint_app, name="fingerprint")
