"""The cleared subset and the EU AI Act training-content summary over HTTP.

`GET /v1/clearances/{id}/export?format=manifest|webdataset|hf` answers a file: the manifest
(`type=jsonl|csv|parquet`), one WebDataset shard (`.tar`), or the Hugging Face `imagefolder` copy
as a `.tar`. Only cleared items are ever included (`verdict` other than `clear` is for manifests).
`GET /v1/summaries/eu-training-content?job=1&job=2&format=json|md` answers the summary.
"""

from __future__ import annotations

import shutil
import tarfile
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from api.deps import SessionDep, SettingsDep, requires
from api.routers.clearance import _job_for
from registry.access import ApiKey, Role
from registry.clearance import build_eu_summary, export_cleared, find_items, render_markdown
from registry.errors import NotFound

router = APIRouter(prefix="/v1", tags=["clearance"])
Reader = Annotated[ApiKey, Depends(requires(Role.ml, Role.legal))]
MEDIA_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv",
               "parquet": "application/vnd.apache.parquet"}


@router.get("/clearances/{job_id}/export", response_class=FileResponse)
def export_clearance(
    job_id: int, session: SessionDep, settings: SettingsDep, key: Reader,
    format: str = Query(pattern="^(manifest|webdataset|hf)$"),
    type: str = Query("jsonl", pattern="^(jsonl|csv|parquet)$",
                      description="manifest file type"),
    verdict: list[str] = Query(["clear"]),
) -> Any:
    """The cleared subset of a finished job, as a download."""
    job = _job_for(session, job_id, key)
    work = settings.jobs_dir / "exports" / uuid.uuid4().hex
    work.mkdir(parents=True)
    cleanup = BackgroundTask(shutil.rmtree, work, ignore_errors=True)
    try:
        if format == "manifest":
            target = work / f"clearance-{job_id}-cleared.{type}"
            export_cleared(session, job, fmt="manifest", out=target, verdicts=verdict,
                           max_bytes=settings.max_upload_bytes)
            return FileResponse(target, media_type=MEDIA_TYPES[type], filename=target.name,
                                background=cleanup)
        folder = work / f"clearance-{job_id}-{format}"
        result = export_cleared(session, job, fmt=format, out=folder, verdicts=verdict,
                                max_bytes=settings.max_upload_bytes, shard_items=10**9)
        if format == "webdataset":
            target = folder / result.files[0]
        else:
            target = work / f"{folder.name}.tar"
            with tarfile.open(target, "w") as tar:
                tar.add(folder, arcname=folder.name)
        return FileResponse(target, media_type="application/x-tar",
                            filename=f"clearance-{job_id}-{format}.tar", background=cleanup)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@router.get("/clearances/{job_id}/verdicts")
def verdicts_by_ref(
    job_id: int, session: SessionDep, key: Reader,
    ref: str = Query(min_length=1, max_length=4000, description="item key, URL or sha256"),
) -> dict[str, Any]:
    """The items of a job with this key, URL or content sha256, with their verdicts."""
    from registry.clearance.reports import item_dict

    _job_for(session, job_id, key)
    items = [item_dict(i) for i in find_items(session, job_id, ref)]
    if not items:
        raise NotFound("clearance item", ref)
    return {"job": job_id, "ref": ref, "items": items}


@router.get("/summaries/eu-training-content")
def eu_training_summary(
    session: SessionDep, key: Reader,
    job: list[int] = Query(description="finished clearance jobs (repeat the parameter)"),
    format: str = Query("json", pattern="^(json|md)$"),
) -> Response:
    """Data for the EU AI Act public summary of training content over the jobs' cleared
    subsets."""
    data = build_eu_summary(session, [_job_for(session, j, key) for j in job])
    if format == "md":
        return Response(render_markdown(data), media_type="text/markdown; charset=utf-8")
    return JSONResponse(data)
