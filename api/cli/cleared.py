"""`clearhouse clearances export JOB` (the cleared subset) and `clearhouse summary JOB...` (the EU
AI Act training-content summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli import clearance as clearance_cli
from api.cli.context import JsonOpt, console, emit_json, fail, handle_errors, open_registry
from registry import clearance
from registry.clearance import EXPORT_FORMATS, build_eu_summary, export_cleared, render_markdown


@handle_errors
def export(
    job: int,
    fmt: Annotated[str, typer.Option(
        "--format", help="manifest (CSV/JSONL/Parquet by --out's suffix), webdataset (shards "
        "in a new folder) or hf (a Hugging Face imagefolder in a new folder).")],
    out: Annotated[Path, typer.Option(help="File (manifest) or folder to create; must not "
                                           "exist.")],
    verdict: Annotated[list[str] | None, typer.Option(
        help="Verdicts to include (default: clear). Only a manifest may list other verdicts.")
    ] = None,
    shard_items: Annotated[int, typer.Option(help="Samples per WebDataset shard.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Write the cleared subset of JOB: what may be trained on. Blocked, unreadable and
    unreviewed items are never included; each item is read again and must still have the
    sha256 the clearance saw."""
    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}")
    reg = open_registry()
    with reg.session() as session:
        result = export_cleared(session, clearance.get_job(session, job), fmt=fmt, out=out,
                                verdicts=verdict or ["clear"], shard_items=shard_items,
                                max_bytes=reg.settings.max_upload_bytes)
    if as_json:
        emit_json(result.as_dict())
        return
    left = ", ".join(f"{n} {v}" for v, n in result.left_out.items()) or "nothing"
    console.print(f"{result.items} item(s) ({', '.join(result.verdicts)}) written to {out} "
                  f"as {fmt}; left out: {left}\nsubset digest sha256:{result.digest}",
                  highlight=False)


@handle_errors
def summary(
    jobs: Annotated[list[int], typer.Argument(help="Finished clearance jobs whose cleared "
                                                   "subsets the model trains on.")],
    fmt: Annotated[str, typer.Option("--format", help="json or md.")] = "json",
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Data for the EU AI Act public summary of training content (Commission template, July
    2025): what the registry knows, and the fields left for the provider."""
    if fmt not in ("json", "md"):
        fail("--format must be json or md")
    reg = open_registry()
    with reg.session() as session:
        data = build_eu_summary(session, [clearance.get_job(session, j) for j in jobs])
    text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n" if fmt == "json"
            else render_markdown(data))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@handle_errors
def verdict(
    job: int,
    ref: Annotated[str, typer.Argument(help="Item key, URL or content sha256.")],
    as_json: JsonOpt = False,
) -> None:
    """The verdict of the items of JOB with this key, URL or sha256 (exit 1 if none)."""
    from registry.clearance.reports import item_dict

    reg = open_registry()
    with reg.session() as session:
        clearance.get_job(session, job)
        items = [item_dict(i) for i in clearance.find_items(session, job, ref)]
    if not items:
        fail(f"no item of clearance job {job} has the key, URL or sha256 {ref!r}")
    if as_json:
        emit_json({"job": job, "ref": ref, "items": items})
        return
    for item in items:
        console.print(f"{item['verdict']:>7} {item['key']}  sha256 {item['sha256']}"
                      + (f"  url {item['url']}" if item["url"] else ""), highlight=False)


def register(app: typer.Typer) -> None:
    """Add `clearances export|verdict` and `summary` to the root app."""
    clearance_cli.clearances_app.command("export")(export)
    clearance_cli.clearances_app.command("verdict")(verdict)
    app.command("summary")(summary)
