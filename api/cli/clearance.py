"""`clearhouse clear ...`, `clearhouse clearances ...`, `clearhouse review ...`,
`clearhouse certificate issue|verify ...`.

`clear` exits 0 when every item is clear, 1 when any item is blocked, 2 when any needs review (and
none is blocked), 3 when the only problems are unreadable items (errors); a bad command line or a
registry error is a one-line message and exit 1 (see README.md, "Dataset clearance").
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.context import (
    JsonOpt,
    Registry,
    cli_actor,
    console,
    emit_json,
    err_console,
    fail,
    handle_errors,
    make_table,
    open_registry,
    progress,
)
from registry import clearance
from registry.audit import Actor
from registry.clearance.datasets import open_dataset
from registry.clearance.drift import certificate_drift
from registry.clearance.reports import item_dict
from registry.errors import Conflict, InvalidInput

review_app = typer.Typer(help="Legal review of clearance items left in `review`.",
                         no_args_is_help=True)
certificate_app = typer.Typer(help="Signed clearance certificates (in-toto / DSSE).",
                              no_args_is_help=True)
clearances_app = typer.Typer(help="Clearance jobs: list, show, report, resume, cancel.",
                             no_args_is_help=True)

ActorOpt = Annotated[str | None, typer.Option("--as", help="Who acts (default: your login).")]
AllowedRootOpt = Annotated[list[Path] | None, typer.Option(
    "--allowed-root", help="A folder a manifest's paths may lie in besides the manifest's own "
    "(repeatable).")]
VERDICT_STYLE = {"clear": "green", "blocked": "red", "review": "yellow", "error": "magenta"}


def _actor(name: str | None) -> Actor:
    return cli_actor(name)


def _policies(reg: Registry) -> Any:
    from registry.policy import load_policies

    return load_policies(reg.settings.policies_dir)


def _policies_or_none(reg: Registry) -> Any:
    """The policies if they load (a certificate then says until when its licences run)."""
    from registry.errors import RegistryError

    try:
        return _policies(reg)
    except RegistryError:
        return None


class _Bar:
    """Progress callback driving a Rich bar with items/s and ETA."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task = bar.add_task("clearing", total=None, rate="")
        self.started = time.monotonic()
        self.first: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (done - self.first) / elapsed
        self.bar.update(self.task, completed=done, total=total, rate=f"{rate:.1f} items/s")


def _write_report(reg: Registry, job_id: int, fmt: str, out: Path) -> None:
    with reg.session() as session:
        text, _ = clearance.render_report(session, clearance.get_job(session, job_id), fmt,
                                          store=reg.store)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def _print_summary(report: dict[str, Any]) -> None:
    job = report["job"]
    title = f"clearance job {job['id']}: {report['dataset']['uri']}"
    table = make_table("verdict", "items", title=title)
    for verdict in clearance.Verdict:
        count = report["summary"].get(verdict.value, 0)
        style = VERDICT_STYLE[verdict.value]
        table.add_row(f"[{style}]{verdict.value}[/]", str(count))
    table.add_row("[bold]total[/]", str(report["summary"]["total"]))
    console.print(table)
    for item in report["items"]:
        if item["verdict"] in ("blocked", "review", "error"):
            detail = item["error"] or ", ".join(
                f"asset {m['asset_id']} {m['decision']}" for m in item["matches"])
            style = VERDICT_STYLE[item["verdict"]]
            console.print(f"[{style}]{item['verdict']:>7}[/] {item['path']}  {detail}",
                          highlight=False, soft_wrap=True)


def clear(
    dataset: Annotated[Path | None, typer.Argument(
        help="Folder, .tar/.zip archive, WebDataset shards (folder or {000..009} pattern), or "
             "a CSV/JSONL/Parquet manifest with a path column.")] = None,
    use: Annotated[str | None, typer.Option(
        help="ai_training, ai_generative_training, ai_inference or data_mining.")] = None,
    licensee: Annotated[str | None, typer.Option(help="Who will use the dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name or family.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Items per committed batch.")] = 16,
    report: Annotated[Path | None, typer.Option(help="Write the report to this file.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="Report format: json, csv or html.")] = "json",
    resume: Annotated[int | None, typer.Option(
        "--resume", help="Resume job JOB (killed or never finished).")] = None,
    path_column: Annotated[str, typer.Option(help="Manifest column of item paths.")] = "path",
    id_column: Annotated[str, typer.Option(help="Manifest column of item ids.")] = "id",
    caption_column: Annotated[str, typer.Option(help="Manifest column of captions.")] = "caption",
    allowed_root: AllowedRootOpt = None,
    images: Annotated[Path | None, typer.Option(
        help="Manifest of URLs (img2dataset/LAION): the local folder of downloaded images; "
             "rows without a local copy are listed as missing, never fetched.")] = None,
    schema: Annotated[bool, typer.Option(
        "--schema", help="Print the JSON Schema of the report and exit.")] = False,
    actor: ActorOpt = None,
    engine: Annotated[str, typer.Option(
        help="local (a process pool here) or ray (Ray Data actors; needs clearhouse[ray]).")
    ] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="With --engine ray: the cluster to join (e.g. auto, ray://head:10001); default "
             "CLEARHOUSE_RAY_ADDRESS, else a local Ray runtime.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the JSON report on stdout.")] = False,
) -> None:
    """Clear a dataset for a use: per-item verdicts, a report, and an exit code
    (0 clear, 1 blocked, 2 review, 3 unreadable items)."""
    if schema:
        emit_json(clearance.REPORT_SCHEMA)
        return
    if fmt not in clearance.REPORT_FORMATS:
        fail(f"--format must be one of {', '.join(clearance.REPORT_FORMATS)}")
    reg = open_registry()
    settings = reg.settings
    common = dict(
        policies=_policies(reg),
        database_url=settings.resolved_database_url,
        index_dir=settings.home / "index",
        max_distance=settings.pdq_match_distance,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        ray_address=ray_address or settings.ray_address,
    )
    with progress() as bar:
        tick = _Bar(bar)
        if resume is not None:
            if dataset is not None:
                fail("give either DATASET or --resume JOB, not both")
            result = clearance.resume_job(reg.factory, resume, on_progress=tick, **common)
        else:
            if dataset is None:
                fail("missing DATASET (or --resume JOB, or --schema)")
            if not use or not licensee:
                fail("--use and --licensee are required")
            columns = {"path_column": path_column, "id_column": id_column,
                       "caption_column": caption_column}
            result = clearance.clear_dataset(
                reg.factory, dataset, use=use, licensee=licensee, model_family=model,
                owner=_actor(actor).name, actor=_actor(actor), workers=workers,
                batch_size=batch_size,
                manifest_columns=columns, item_roots=allowed_root or [], images_dir=images,
                on_progress=tick, engine=engine, **common)
    if report is not None:
        _write_report(reg, result.job_id, fmt, report)
    if as_json:
        emit_json(result.report)
    else:
        _print_summary(result.report)
        if report is not None:
            console.print(f"report ({fmt}) written to {report}", highlight=False)
    raise typer.Exit(result.exit_code)


@clearances_app.command("list")
@handle_errors
def list_clearances(limit: int = 50, as_json: JsonOpt = False) -> None:
    """List clearance jobs, newest first."""
    reg = open_registry()
    with reg.session() as session:
        rows = [clearance.job_dict(session, j) for j in clearance.list_jobs(session, limit=limit)]
    if as_json:
        emit_json({"jobs": rows})
        return
    table = make_table("id", "status", "use", "licensee", "items", "clear", "blocked", "review",
                  "error", "certified")
    for r in rows:
        s = r["summary"]
        table.add_row(str(r["id"]), r["status"], r["use"], r["licensee"],
                      f"{r['done_items']}/{r['total_items'] or '?'}", str(s["clear"]),
                      str(s["blocked"]), str(s["review"]), str(s["error"]),
                      "yes" if r["certified"] else "")
    console.print(table)


@clearances_app.command("resume")
@handle_errors
def resume_all(as_json: JsonOpt = False) -> None:
    """Resume every unfinished job (pending, or left running by a crash): run this when a worker
    machine restarts."""
    reg = open_registry()
    settings = reg.settings
    with reg.session() as session:
        job_ids = [j.id for j in clearance.unfinished_jobs(session)]
    policies = _policies(reg) if job_ids else None
    done = []
    for job_id in job_ids:
        try:
            result = clearance.resume_job(
                reg.factory, job_id, policies=policies,
                database_url=settings.resolved_database_url, index_dir=settings.home / "index",
                max_distance=settings.pdq_match_distance, max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels)
        except Conflict as exc:  # a live worker holds it: it is being finished already
            err_console.print(f"skipped: {exc}", highlight=False)
            continue
        done.append({"job": job_id, "summary": result.summary})
    if as_json:
        emit_json({"resumed": done})
    else:
        console.print(f"resumed {len(done)} job(s): {', '.join(str(d['job']) for d in done)}",
                      highlight=False)


@clearances_app.command("cancel")
@handle_errors
def cancel_clearance(job: int, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Stop a pending or running job (a running one stops after its current batch)."""
    reg = open_registry()
    with reg.session() as session:
        data = clearance.job_dict(session, clearance.cancel_job(session, job, actor=_actor(actor)))
    if as_json:
        emit_json(data)
    else:
        console.print(f"clearance job {job} cancelled ({data['done_items']} item(s) kept)",
                      highlight=False)


@clearances_app.command("show")
@handle_errors
def show_clearance(job: int, as_json: JsonOpt = False) -> None:
    """Status, progress and summary of one job."""
    reg = open_registry()
    with reg.session() as session:
        found = clearance.get_job(session, job)
        data = clearance.job_dict(session, found)
        drift = certificate_drift(session, found)
    if as_json:
        emit_json({**data, "certificate_drift": drift})
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)
    for problem in drift:
        err_console.print(f"[yellow]warning[/]: {problem}", highlight=False)


@clearances_app.command("report")
@handle_errors
def clearance_report(
    job: int,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html.")] = "json",
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """The report of a job (after review, it shows the legal decisions)."""
    reg = open_registry()
    with reg.session() as session:
        text, _ = clearance.render_report(session, clearance.get_job(session, job), fmt,
                                          store=reg.store)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")


@review_app.command("list")
@handle_errors
def review_list(
    job: int,
    all_items: Annotated[bool, typer.Option(
        "--all", help="Include items already decided.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Items of JOB awaiting legal review."""
    reg = open_registry()
    with reg.session() as session:
        clearance.get_job(session, job)
        items = [item_dict(i) for i in clearance.list_items(session, job)
                 if i.verdict == "review" or (all_items and i.machine_verdict == "review")]
    if as_json:
        emit_json({"job": job, "items": items})
        return
    table = make_table("item", "path", "verdict", "matches",
                       title=f"job {job}: {len(items)} item(s)")
    for item in items:
        matches = "; ".join(f"asset {m['asset_id']} {m['decision']}: {m['explanation']}"
                            for m in item["matches"])
        table.add_row(str(item["item"]), item["path"], item["verdict"], matches)
    console.print(table)


@review_app.command("decide")
@handle_errors
def review_decide(
    job: int,
    item: Annotated[str, typer.Argument(help="Item id (from `review list`) or item key.")],
    decision: Annotated[str, typer.Option(help="allowed or blocked.")],
    comment: Annotated[str, typer.Option(help="Why (goes to the audit log).")],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide an item in review: allowed (it becomes clear) or blocked."""
    reg = open_registry()
    with reg.session() as session:
        row = clearance.review_item(session, job_id=job, item=item, decision=decision,
                                    comment=comment, actor=_actor(actor))
        data = item_dict(row)
    if as_json:
        emit_json(data)
    else:
        console.print(f"item {data['item']} ({data['path']}): {data['verdict']}", highlight=False)


def _signing_keys(reg: Registry) -> Any:
    from registry.provenance.keys import studio_signing_keys

    settings = reg.settings
    return studio_signing_keys(
        signing_cert=settings.signing_cert,
        signing_key=settings.signing_key,
        keys_dir=settings.keys_dir,
    )


@certificate_app.command("issue")
@handle_errors
def certificate_issue(
    job: int,
    out: Annotated[Path | None, typer.Option(
        help="Where to write it (default: CLEARHOUSE_HOME/jobs/clearance-JOB.dsse.json).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign the clearance certificate of a finished job with no item left in review."""
    reg = open_registry()
    keys = _signing_keys(reg)
    with reg.session() as session:
        envelope = clearance.issue_certificate(
            session, clearance.get_job(session, job), private_key=keys.private_key,
            chain_pem=keys.chain_pem, actor=_actor(actor), policies=_policies_or_none(reg))
    target = out or reg.settings.jobs_dir / f"clearance-{job}.dsse.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(envelope, indent=2) + "\n", encoding="utf-8")
    if as_json:
        emit_json({"job": job, "path": str(target), "envelope": envelope})
    else:
        console.print(f"certificate for job {job} written to {target}", highlight=False)


@certificate_app.command("verify")
@handle_errors
def certificate_verify(
    file: Annotated[Path, typer.Argument(help="A certificate (DSSE JSON).")],
    dataset: Annotated[Path | None, typer.Option(
        help="Recompute this dataset's digest and check it matches.")] = None,
    allowed_root: AllowedRootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a certificate offline against the trust anchors (exit 0 valid, 1 invalid)."""
    from registry.provenance.keys import trust_anchors_pem

    if not file.is_file():
        fail(f"{file}: no such file")
    settings = open_registry(migrate_schema=False).settings
    anchors = trust_anchors_pem(settings.trust_anchors, settings.keys_dir)
    opened = None
    if dataset is not None:
        options = _certified_options(file)
        try:
            opened = open_dataset(dataset, item_roots=allowed_root or [],
                                  path_column=options.get("path_column", "path"),
                                  id_column=options.get("id_column", "id"),
                                  caption_column=options.get("caption_column", "caption"))
        except InvalidInput as exc:
            fail(f"dataset: {exc.message}")
    check = clearance.verify_certificate(file.read_bytes(), anchors_pem=anchors, dataset=opened,
                                         max_bytes=settings.max_upload_bytes)
    drift = _registry_drift(check.statement) if check.valid else []
    if as_json:
        emit_json({**check.as_dict(), "drift": drift})
    elif check.valid:
        data = check.as_dict()
        console.print(f"[green]valid[/]: {check.reason}", highlight=False)
        console.print(f"signer: {check.signer}\ndataset: sha256:{check.dataset_digest}\n"
                      f"use {data['use']} by {data['licensee']} (model {data['model']}); "
                      f"counts {data['counts']}", highlight=False)
        for problem in drift:
            err_console.print(f"[yellow]warning[/]: {problem}", highlight=False)
    if not check.valid:
        if as_json:
            raise typer.Exit(1)
        fail(f"invalid certificate: {check.reason}")


def _registry_drift(statement: dict[str, Any] | None) -> list[str]:
    """Items of the certified job changed in this registry since the certificate (when the job
    is in this registry's database with this very certificate); [] otherwise."""
    from sqlalchemy.exc import SQLAlchemyError

    from registry.clearance.drift import certificate_drift, certified_statement

    job_id = ((statement or {}).get("predicate") or {}).get("job", {}).get("id")
    if not isinstance(job_id, int):
        return []
    try:
        reg = open_registry(migrate_schema=False)
        with reg.session() as session:
            job = session.get(clearance.ClearanceJob, job_id)
            if job is None or certified_statement(job.certificate) != statement:
                return []
            return certificate_drift(session, job)
    except SQLAlchemyError:  # no registry database here: an offline check has nothing to add
        return []


def _certified_options(file: Path) -> dict[str, str]:
    """The manifest column options the certificate recorded (unsigned read: only to open the
    dataset the same way; the signature check comes after)."""
    import base64

    try:
        envelope = json.loads(file.read_bytes())
        predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
        dataset = predicate.get("submittedDataset") or predicate["dataset"]
        options = dataset["options"] or {}
    except (ValueError, KeyError, TypeError):
        return {}
    keys = ("path_column", "id_column", "caption_column")
    return {k: str(options[k]) for k in keys if k in options}


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("clear")(handle_errors(clear))
    app.add_typer(clearances_app, name="clearances")
    app.add_typer(review_app, name="review")
    app.add_typer(certificate_app, name="certificate")

