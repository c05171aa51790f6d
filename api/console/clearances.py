"""Console clearances: the jobs with live progress (htmx polling), a job's page (counts per verdict
as a bar chart; items filtered, searched and paged through registry.clearance.page_items so a
100,000-item job renders like a 10-item one), matched pairs side by side, the review queue
(decide one by one or in bulk, with a comment), and the certificate (issue, download).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.security import Caller, render, signed_in
from api.deps import SessionDep, SettingsDep
from registry import catalog, clearance
from registry.access import Role
from registry.clearance.queries import VERDICT_ORDER
from registry.errors import Forbidden, InvalidInput, NotFound, RegistryError

router = APIRouter()
ITEMS_PER_PAGE = 50
JOBS_SHOWN = 100
POLL = "every 2s"

Reader = Annotated[Caller, Depends(signed_in(Role.legal, Role.ml))]
Legal = Annotated[Caller, Depends(signed_in(Role.legal))]


def job_for(session: Session, job_id: int, caller: Caller) -> clearance.ClearanceJob:
    """The job if this user may see it: legal and admin see all, ml only its own."""
    job = clearance.get_job(session, job_id)
    if caller.can(Role.legal) or job.owner_key_id == caller.key_id:
        return job
    raise Forbidden(f"clearance job {job_id} was submitted by another key")


def _own(caller: Caller) -> int | None:
    return None if caller.can(Role.legal) else caller.key_id


def _number(text: str, default: int = 1) -> int:
    text = text.strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInput(f"{text[:20]!r} is not a page number")
    return max(int(text), 1)


def _job_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise NotFound("clearance job", text[:20])
    return int(text)


def _unfinished(job: clearance.ClearanceJob) -> bool:
    return job.status in (clearance.JobStatus.pending.value, clearance.JobStatus.running.value)


# --- jobs ----------------------------------------------------------------------------------------


@router.get("/clearances", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep, caller: Reader) -> Response:
    jobs = clearance.list_jobs(session, owner_key_id=_own(caller), limit=JOBS_SHOWN)
    context = {"jobs": jobs, "counts": {j.id: _counts(session, j.id) for j in jobs},
               "poll": any(_unfinished(j) for j in jobs)}
    template = ("components/job_rows.html" if request.headers.get("hx-request")
                else "pages/clearances.html")
    return render(request, template, context)


def _counts(session: Session, job_id: int) -> dict[str, int]:
    return clearance.page_items(session, job_id, limit=1).counts


def _job_context(session: Session, job: clearance.ClearanceJob, *, verdict: str, q: str,
                 page: int, in_text: bool = False) -> dict[str, Any]:
    chosen = verdict if verdict in VERDICT_ORDER else None
    found = clearance.page_items(session, job.id, verdict=chosen, q=q or None, in_text=in_text,
                                 offset=(page - 1) * ITEMS_PER_PAGE, limit=ITEMS_PER_PAGE)
    pages = max(1, -(-found.total // ITEMS_PER_PAGE))
    titles = _asset_titles(session, found.items)
    return {"job": job, "items": found.items, "total": found.total, "counts": found.counts,
            "verdict": chosen or "", "q": q, "in_text": in_text, "page": page,
            "pages": pages, "titles": titles,
            "verdicts": VERDICT_ORDER, "poll": _unfinished(job),
            "chart": _chart(found.counts)}


def _asset_titles(session: Session, items: list[clearance.ClearanceItem]) -> dict[int, Any]:
    ids = {int(m["asset_id"]) for i in items for m in i.matches if m.get("asset_id")}
    if not ids:
        return {}
    rows = session.scalars(select(catalog.Asset).where(catalog.Asset.id.in_(ids))).unique()
    return {a.id: a for a in rows}


def _chart(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Bars of the verdict chart: label, count, width in the 0-300 SVG units of the bar area."""
    top = max(counts.values(), default=0) or 1
    return [{"verdict": v, "count": counts.get(v, 0),
             "width": round(300 * counts.get(v, 0) / top, 1), "y": 8 + i * 30}
            for i, v in enumerate(VERDICT_ORDER)]


@router.get("/clearances/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, caller: Reader, job_id: str,
             verdict: str = "", q: str = "", in_text: str = "", page: str = "1") -> Response:
    job = job_for(session, _job_id(job_id), caller)
    context = _job_context(session, job, verdict=verdict, q=q[:200], page=_number(page),
                           in_text=bool(in_text))
    template = ("components/job_items.html" if request.headers.get("hx-target") == "items"
                else "pages/clearance.html")
    return render(request, template, context)


@router.get("/clearances/{job_id}/progress", response_class=HTMLResponse)
def job_progress(request: Request, session: SessionDep, caller: Reader,
                 job_id: str) -> Response:
    job = job_for(session, _job_id(job_id), caller)
    response = render(request, "components/job_progress.html",
                      {"job": job, "poll": _unfinished(job)})
    if not _unfinished(job) and request.headers.get("hx-request"):
        response.headers["HX-Refresh"] = "true"  # show the finished job's counts and items
    return response


# --- one item: the matched pair ------------------------------------------------------------------


def _item(session: Session, job: clearance.ClearanceJob, item_id: str) -> clearance.ClearanceItem:
    if not (item_id.isascii() and item_id.isdigit()) or len(item_id) > 12:
        raise NotFound("clearance item", item_id[:20])
    return clearance.get_item(session, job.id, int(item_id))


def _original(job: clearance.ClearanceJob, item: clearance.ClearanceItem) -> Path | None:
    """The item's file in a folder dataset (still there, inside the dataset root), or None."""
    if job.dataset_kind != "folder":
        return None
    root = Path(job.dataset_uri).resolve()
    path = (root / item.item_key).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _size_of(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError, ValueError):
        return None


@router.get("/clearances/{job_id}/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, session: SessionDep, caller: Reader, job_id: str,
              item_id: str) -> Response:
    job = job_for(session, _job_id(job_id), caller)
    item = _item(session, job, item_id)
    size = _size_of(_original(job, item))
    pairs = []
    titles = _asset_titles(session, [item])
    for match in item.matches:
        region = match.get("region")
        box = None
        if size and isinstance(region, list) and len(region) == 4:
            box = {"x": region[0], "y": region[1], "w": region[2], "h": region[3]}
        pairs.append({"match": match, "asset": titles.get(int(match.get("asset_id") or 0)),
                      "box": box})
    return render(request, "pages/clearance_item.html",
                  {"job": job, "item": item, "pairs": pairs, "size": size,
                   "can_review": caller.can(Role.legal)})


@router.get("/clearances/{job_id}/items/{item_id}/image")
def item_image(session: SessionDep, caller: Reader, job_id: str, item_id: str) -> Response:
    """The dataset item as a JPEG of at most 768 px: from the dataset when it is still there,
    else the thumbnail the clearance stored."""
    job = job_for(session, _job_id(job_id), caller)
    item = _item(session, job, item_id)
    original = _original(job, item)
    if original is not None:
        try:
            with Image.open(original) as image:
                image.draft("RGB", (768, 768))
                picture = image.convert("RGB")
            picture.thumbnail((768, 768))
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=85)
            return Response(out.getvalue(), media_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=3600"})
        except (OSError, Image.DecompressionBombError, ValueError):
            pass
    if item.thumbnail is None:
        raise NotFound("picture of clearance item", item.id)
    return Response(item.thumbnail, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


# --- review --------------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, session: SessionDep, caller: Legal) -> Response:
    return render(request, "pages/review_queue.html",
                  {"queue": clearance.review_queue(session)})


def _review_context(session: Session, job: clearance.ClearanceJob, page: int) -> dict[str, Any]:
    found = clearance.page_items(session, job.id, verdict="review",
                                 offset=(page - 1) * ITEMS_PER_PAGE, limit=ITEMS_PER_PAGE)
    pages = max(1, -(-found.total // ITEMS_PER_PAGE))
    return {"job": job, "items": found.items, "total": found.total, "counts": found.counts,
            "page": min(page, pages), "pages": pages,
            "titles": _asset_titles(session, found.items)}


@router.get("/clearances/{job_id}/review", response_class=HTMLResponse)
def job_review_page(request: Request, session: SessionDep, caller: Legal, job_id: str,
                    page: str = "1", decided: str = "") -> Response:
    job = job_for(session, _job_id(job_id), caller)
    context = _review_context(session, job, _number(page))
    context["decided"] = _number(decided, 0) if decided else 0
    return render(request, "pages/review.html", context)


@router.post("/clearances/{job_id}/review", response_class=HTMLResponse)
def decide(
    request: Request,
    session: SessionDep,
    caller: Legal,
    job_id: str,
    decision: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=4000)] = "",
    items: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Decide the chosen items (one, or several in bulk) with one comment; all or none."""
    job = job_for(session, _job_id(job_id), caller)
    chosen = [int(i) for i in items or [] if i.isascii() and i.isdigit() and len(i) < 12]
    try:
        decided = clearance.review_many(session, job_id=job.id, items=chosen,
                                        decision=decision, comment=comment, actor=caller.name)
    except RegistryError as exc:
        session.rollback()
        context = _review_context(session, job, 1)
        context |= {"error": exc.message, "comment": comment, "chosen": set(chosen),
                    "decided": 0}
        status = 409 if exc.code == "conflict" else 422
        return render(request, "pages/review.html", context, status_code=status)
    return RedirectResponse(f"/console/clearances/{job.id}/review?decided={len(decided)}",
                            status_code=303)


# --- certificate ---------------------------------------------------------------------------------


@router.post("/clearances/{job_id}/certificate")
def issue_certificate(request: Request, session: SessionDep, settings: SettingsDep,
                      caller: Reader, job_id: str) -> Response:
    from registry.provenance.keys import studio_signing_keys

    job = job_for(session, _job_id(job_id), caller)
    keys = studio_signing_keys(signing_cert=settings.signing_cert,
                               signing_key=settings.signing_key, keys_dir=settings.keys_dir)
    clearance.issue_certificate(session, job, private_key=keys.private_key,
                                chain_pem=keys.chain_pem, actor=caller.name)
    return RedirectResponse(f"/console/clearances/{job.id}#certificate", status_code=303)


@router.get("/clearances/{job_id}/certificate")
def download_certificate(session: SessionDep, caller: Reader, job_id: str) -> Response:
    job = job_for(session, _job_id(job_id), caller)
    if job.certificate is None:
        raise NotFound("certificate of clearance job", job.id)
    return Response(
        json.dumps(job.certificate, indent=2), media_type="application/json",
        headers={"Content-Disposition":
                 f'attachment; filename="clearance-{job.id}-certificate.dsse.json"'})
