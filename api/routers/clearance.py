"""Clearance routes: /v1/clearances (submit, status, report, items, review, certificate).

Role `ml` submits jobs and reads its own; `legal` reads every job, decides items in review and
signs certificates (admin passes every check). A submitted job runs after the response is sent,
in this process (a background task); `GET /v1/clearances/{id}` shows its progress.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from api.deps import RowId, SessionDep, SettingsDep, StoreDep, actor_of, requires
from api.schemas.clearance import (
    CertificateCheckRead,
    ClearanceCreate,
    ClearanceRead,
    ItemRead,
    ReviewCreate,
    UseName,
)
from registry import clearance
from registry.access import ApiKey, Role
from registry.clearance.datasets import Dataset, check_archive, open_dataset
from registry.clearance.reports import item_dict
from registry.errors import Forbidden, InvalidInput, MediaTooLarge, NotFound, RegistryError
from registry.settings import Settings

log = logging.getLogger("clearhouse.clearance")
router = APIRouter(prefix="/v1", tags=["clearance"])

Submitter = Annotated[ApiKey, Depends(requires(Role.ml))]
Reader = Annotated[ApiKey, Depends(requires(Role.ml, Role.legal))]
Legal = Annotated[ApiKey, Depends(requires(Role.legal))]
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def _job_for(session: Session, job_id: int, key: ApiKey) -> clearance.ClearanceJob:
    """The job, if this key may read it: legal and admin read all, ml only its own."""
    job = clearance.get_job(session, job_id)
    if key.role in (Role.admin.value, Role.legal.value):
        return job
    if job.owner_key_id != key.id:
        raise Forbidden(f"clearance job {job_id} was submitted by another key")
    return job


def resume_unfinished_jobs(factory: sessionmaker[Session], settings: Settings) -> threading.Thread:
    """On start-up (embedded worker only): finish the jobs a killed server left pending or
    running, one after another, in a background thread, through the same claims and leases as
    `clearhouse worker` (committed batches are kept; see registry.clearance.run_job)."""
    from api.worker import work

    def run() -> None:
        try:
            work(factory, settings, exit_when_idle=True)
        except Exception:
            log.exception("resuming clearance jobs stopped")

    thread = threading.Thread(target=run, name="clearance-resume", daemon=True)
    thread.start()
    return thread


def _submit(
    request: Request, background: BackgroundTasks, session: Session, key: ApiKey,
    dataset: Dataset, *, use: str, licensee: str, model: str | None, workers: int,
    batch_size: int, engine: str = "local",
) -> dict[str, Any]:
    job = clearance.submit_job(session, dataset=dataset, use=use, licensee=licensee,
                               model_family=model, owner=key.name, owner_key_id=key.id,
                               workers=workers, batch_size=batch_size,
                               max_workers=request.app.state.settings.max_workers,
                               actor=actor_of(key), engine=engine)
    data = clearance.job_dict(session, job)
    settings: Settings = request.app.state.settings
    if settings.runs_jobs_in_api:  # else a `clearhouse worker` claims it from the queue
        from api.worker import run_accepted_job

        background.add_task(run_accepted_job, request.app.state.session_factory, settings, job.id)
    return data


@router.post("/clearances", response_model=ClearanceRead, status_code=202)
def create_clearance(
    body: ClearanceCreate, request: Request, background: BackgroundTasks,
    session: SessionDep, settings: SettingsDep, key: Submitter,
) -> object:
    """Clear a dataset at a server-side path under one of the allowed roots."""
    if not settings.allowed_roots:
        raise InvalidInput("no allowed dataset roots are configured on this server "
                           "(CLEARHOUSE_ALLOWED_ROOTS); upload an archive instead")
    dataset = open_dataset(body.dataset, allowed_roots=settings.allowed_roots,
                           path_column=body.path_column, id_column=body.id_column,
                           caption_column=body.caption_column)
    return _submit(request, background, session, key, dataset, use=body.use,
                   licensee=body.licensee, model=body.model, workers=body.workers,
                   batch_size=body.batch_size, engine=body.engine)


@router.post("/clearances/archive", response_model=ClearanceRead, status_code=202)
def create_clearance_from_archive(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    key: Submitter,
    file: Annotated[UploadFile, File(description="the dataset as a .zip or .tar archive")],
    use: Annotated[UseName, Form()],
    licensee: Annotated[str, Form(min_length=1, max_length=200)],
    model: Annotated[str | None, Form(max_length=200)] = None,
    workers: Annotated[int, Form(ge=1, le=64)] = 1,
    batch_size: Annotated[int, Form(ge=1, le=10_000)] = 16,
) -> object:
    """Clear an uploaded archive (zip, tar, or one WebDataset shard)."""
    name = (file.filename or "").lower()
    suffix = next((s for s in ARCHIVE_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise InvalidInput(f"{file.filename}: upload a {', '.join(ARCHIVE_SUFFIXES)} archive")
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise MediaTooLarge(
            f"{file.filename}: upload is over the limit of {settings.max_upload_bytes} bytes")
    folder = settings.jobs_dir / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / f"dataset{suffix}"
    target.write_bytes(data)
    try:
        check_archive(target)  # bombs are refused before a job exists
        dataset = open_dataset(target, allowed_roots=[folder])
    except RegistryError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _submit(request, background, session, key, dataset, use=use, licensee=licensee,
                   model=model, workers=workers, batch_size=batch_size)


@router.post("/clearances/{job_id}/cancel", response_model=ClearanceRead)
def cancel_clearance(job_id: RowId, session: SessionDep, key: Reader) -> object:
    """Stop a pending or running job (a running one stops after its current batch; committed
    items stay). 409 for a job that already ended."""
    job = clearance.cancel_job(session, _job_for(session, job_id, key).id,
                               actor=actor_of(key))
    return clearance.job_dict(session, job)


@router.get("/clearances", response_model=list[ClearanceRead])
def list_clearances(session: SessionDep, key: Reader, limit: int = Query(50, ge=1, le=500)
                    ) -> object:
    own = key.id if key.role == Role.ml.value else None
    return [clearance.job_dict(session, j)
            for j in clearance.list_jobs(session, owner_key_id=own, limit=limit)]


@router.get("/clearances/{job_id}", response_model=ClearanceRead)
def get_clearance(job_id: RowId, session: SessionDep, key: Reader) -> object:
    return clearance.job_dict(session, _job_for(session, job_id, key))


@router.get("/clearances/{job_id}/report", responses={200: {
    "description": "the report", "content": {"application/json": {}, "text/csv": {},
                                             "text/html": {}}}})
def get_report(
    job_id: RowId, session: SessionDep, store: StoreDep, key: Reader,
    format: str = Query("json", pattern="^(json|csv|html)$"),
) -> Response:
    job = _job_for(session, job_id, key)
    if format == "json":
        return JSONResponse(clearance.build_report(session, job))
    text, media_type = clearance.render_report(session, job, format, store=store)
    headers = {"Content-Disposition": f'inline; filename="clearance-{job_id}.{format}"'}
    return Response(text, media_type=f"{media_type}; charset=utf-8", headers=headers)


@router.get("/clearances/{job_id}/items", response_model=list[ItemRead])
def list_items(
    job_id: RowId, session: SessionDep, key: Reader,
    verdict: str | None = Query(None, pattern="^(clear|blocked|review|error)$"),
    limit: int = Query(1000, ge=1, le=100_000),
) -> object:
    _job_for(session, job_id, key)
    return [item_dict(i) for i in clearance.list_items(session, job_id, verdict=verdict,
                                                        limit=limit)]


@router.post("/clearances/{job_id}/items/{item}/review", response_model=ItemRead)
def review_item(job_id: RowId, item: RowId, body: ReviewCreate, session: SessionDep,
                key: Legal) -> object:
    row = clearance.review_item(session, job_id=job_id, item=item, decision=body.decision,
                                comment=body.comment, actor=actor_of(key))
    return item_dict(row)


def _studio_keys(settings: Settings) -> Any:
    from registry.provenance.keys import studio_signing_keys

    return studio_signing_keys(
        signing_cert=settings.signing_cert,
        signing_key=settings.signing_key,
        keys_dir=settings.keys_dir,
    )


@router.post("/clearances/{job_id}/certificate", status_code=201)
def issue_certificate(job_id: RowId, session: SessionDep, settings: SettingsDep,
                      key: Reader) -> dict[str, Any]:
    """Sign the certificate (the job must be finished with no item left in review)."""
    job = _job_for(session, job_id, key)
    keys = _studio_keys(settings)
    return clearance.issue_certificate(session, job, private_key=keys.private_key,
                                       chain_pem=keys.chain_pem, actor=actor_of(key))


@router.get("/clearances/{job_id}/certificate")
def get_certificate(job_id: RowId, session: SessionDep, key: Reader) -> dict[str, Any]:
    job = _job_for(session, job_id, key)
    if job.certificate is None:
        raise NotFound("certificate of clearance job", job_id)
    return job.certificate


@router.post("/certificates/verify", response_model=CertificateCheckRead)
def verify_certificate(
    envelope: dict[str, Any], settings: SettingsDep,
    _: Annotated[ApiKey, Depends(requires(Role.ml, Role.legal, Role.partner))],
) -> object:
    """Check a certificate's signature against this server's trust anchors (no dataset check:
    verify offline with `clearhouse certificate verify FILE --dataset PATH` for that)."""
    from registry.provenance.keys import trust_anchors_pem

    anchors = trust_anchors_pem(settings.trust_anchors, settings.keys_dir)
    return clearance.verify_certificate(envelope, anchors_pem=anchors).as_dict()

