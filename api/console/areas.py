"""Console pages over the other areas: home (what needs legal now), the asset decision panel,
policies, verify, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.console.security import Caller, render, signed_in
from api.deps import SessionDep, SettingsDep, StoreDep
from registry import catalog, clearance
from registry.access import Role
from registry.audit import Actor, AuditEvent, record
from registry.db import utcnow
from registry.errors import InvalidInput, InvalidPolicy, MediaTooLarge, RegistryError
from registry.policy import AssetFacts, PolicyHolder, PolicySet, Use, check_policies
from registry.settings import Settings

router = APIRouter()
EXPIRING_DAYS = 30
AUDIT_PER_PAGE = 50

Anyone = Annotated[Caller, Depends(signed_in())]
Reader = Annotated[Caller, Depends(signed_in(Role.legal, Role.ml))]
Legal = Annotated[Caller, Depends(signed_in(Role.legal))]
Writer = Annotated[Caller, Depends(signed_in(Role.legal))]


def policies_in_force(request: Request, settings: Settings) -> tuple[PolicySet | None, str | None]:
    """The PolicySet the API decides with (shared on app.state), or None and why not."""
    state = request.app.state
    holder: PolicyHolder | None = getattr(state, "policy_holder", None)
    if holder is None:
        holder = PolicyHolder(settings.policies_dir)
        state.policy_holder = holder
    try:
        return holder.current(), None
    except InvalidPolicy as exc:
        return None, exc.message


def _expiring(policy_set: PolicySet | None, today: dt.date) -> list[Any]:
    if policy_set is None:
        return []
    limit = today + dt.timedelta(days=EXPIRING_DAYS)
    return sorted((t for t in policy_set.policies
                   if t.period.to is not None and today <= t.period.to <= limit),
                  key=lambda t: t.period.to)


# --- home ----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, settings: SettingsDep,
         caller: Anyone) -> Response:
    if caller.role == Role.partner.value:
        return RedirectResponse("/console/verify", status_code=303)
    today = dt.datetime.now(dt.UTC).date()
    now = clearance.legal_now(session, now=utcnow(),
                              owner_key_id=None if caller.can(Role.legal) else caller.key_id)
    policy_set, problem = policies_in_force(request, settings)
    return render(request, "pages/home.html", {
        "now": now, "expiring": _expiring(policy_set, today), "policy_problem": problem,
        "queue": clearance.review_queue(session) if caller.can(Role.legal) else [],
        "today": today})


# --- asset: fingerprints, licences, the decision panel -----------------------------------------


def _fingerprint_status(session: Session, asset_id: int) -> dict[str, Any]:
    """Counts of this asset's fingerprints, and why it is weakly protectable (the reason
    `clearhouse fingerprint status` gives) or None; queries this one asset only."""
    from registry.fingerprint import weak_reasons
    from registry.fingerprint.models import Fingerprint, KeypointSet

    hashes = session.scalar(select(func.count(Fingerprint.id))
                            .where(Fingerprint.asset_id == asset_id)) or 0
    keypoints = session.scalar(select(func.max(KeypointSet.count))
                               .where(KeypointSet.asset_id == asset_id)) or 0
    weak = weak_reasons(session, [asset_id]).get(asset_id) if hashes else None
    return {"hashes": hashes, "keypoints": keypoints, "weak": weak}


def _licences_of(policy_set: PolicySet | None, asset: catalog.Asset) -> list[Any]:
    if policy_set is None:
        return []
    holder = asset.rightsholder.name.casefold()
    return [t for t in policy_set.policies if t.licensor.casefold() == holder]


@router.get("/assets/{asset_key}", response_class=HTMLResponse)
def asset_page(request: Request, session: SessionDep, settings: SettingsDep, caller: Reader,
               asset_key: str) -> Response:
    asset = catalog.get_asset(session, asset_key[:100])
    policy_set, problem = policies_in_force(request, settings)
    licences = _licences_of(policy_set, asset)
    licensees = sorted({t.licensee for t in policy_set.policies if t.licensee != "*"}
                       ) if policy_set else []
    return render(request, "pages/asset.html", {
        "asset": asset, "today": dt.datetime.now(dt.UTC).date(), "licences": licences,
        "licensees": licensees, "uses": [u.value for u in Use], "policy_problem": problem,
        "fingerprints": _fingerprint_status(session, asset.id), "decision": None,
        "form": {}})


@router.post("/assets/{asset_key}/decision", response_class=HTMLResponse)
def asset_decision(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: Reader,
    asset_key: str,
    licensee: Annotated[str, Form(max_length=200)] = "",
    use: Annotated[str, Form(max_length=40)] = "",
    on: Annotated[str, Form(max_length=20)] = "",
    model_family: Annotated[str, Form(max_length=200)] = "",
    territory: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The decision for one use of this asset, with its explanation tree (an htmx fragment)."""
    asset = catalog.get_asset(session, asset_key[:100])
    form = {"licensee": licensee, "use": use, "on": on, "model_family": model_family,
            "territory": territory}
    policy_set, problem = policies_in_force(request, settings)
    error = problem
    decision = None
    if policy_set is not None:
        try:
            day = dt.date.fromisoformat(on) if on.strip() else None
        except ValueError:
            day, error = None, f"{on!r} is not a date (YYYY-MM-DD)"
        if error is None:
            try:
                decision = policy_set.decide(
                    AssetFacts.from_asset(asset), licensee=licensee, use=use, on=day,
                    model_family=model_family.strip() or None,
                    territory=territory.strip().upper() or None)
            except InvalidInput as exc:
                error = exc.message
    if decision is not None:
        record(session, actor=caller.name, action="policy.decide",
               subject=f"licensee:{decision.licensee}", use=str(decision.use),
               on=str(decision.on), assets=1, outcomes={str(decision.outcome): 1},
               asset=asset.id)
    status = 200 if error is None else 422
    return render(request, "components/decision.html",
                  {"asset": asset, "decision": decision, "error": error, "form": form},
                  status_code=status)


@router.post("/assets", response_class=HTMLResponse)
def upload_assets(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    caller: Writer,
    files: Annotated[list[UploadFile], File()],
    rightsholder: Annotated[str, Form(max_length=200)] = "",
    franchise: Annotated[str, Form(max_length=200)] = "",
    tags: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Register dropped files in the catalog (legal), fingerprinted like any import."""
    from registry.fingerprint import fingerprint_new_asset

    if not rightsholder.strip():
        raise InvalidInput("choose the rightsholder of the uploaded files")
    holder = catalog.get_rightsholder(session, rightsholder.strip())
    fr = catalog.get_franchise(session, franchise.strip()) if franchise.strip() else None
    results = []
    for upload in files[:50]:
        name = upload.filename or "upload"
        data = upload.file.read(settings.max_upload_bytes + 1)
        try:
            if len(data) > settings.max_upload_bytes:
                raise MediaTooLarge(f"over the limit of {settings.max_upload_bytes} bytes")
            with session.begin_nested():
                asset, created = catalog.register_asset(
                    session, store=store, data=data, name=name, rightsholder=holder,
                    franchise=fr, title=None, tags=tags.split(","),
                    max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
                    actor=Actor(caller.name, caller.key_id, caller.role))  # audits asset.create
                if created:
                    fingerprint_new_asset(session, asset, data)
            results.append({"name": name, "asset": asset,
                            "status": "created" if created else "existing"})
        except RegistryError as exc:
            results.append({"name": name, "asset": None, "status": "error",
                            "error": exc.message})
    return render(request, "components/upload_result.html", {"results": results})


# --- policies ------------------------------------------------------------------------------------


@router.get("/policies", response_class=HTMLResponse)
def policies_page(request: Request, settings: SettingsDep, caller: Reader) -> Response:
    policy_set, problem = policies_in_force(request, settings)
    problems = check_policies(settings.policies_dir) if settings.policies_dir.is_dir() else []
    today = dt.datetime.now(dt.UTC).date()
    rows = []
    for t in policy_set.policies if policy_set else []:
        v = policy_set.version_of(t.id) if policy_set else None
        to = t.period.to
        state = ("expired" if to is not None and to < today else
                 "expiring" if to is not None and to <= today + dt.timedelta(days=EXPIRING_DAYS)
                 else "not yet in force" if t.period.from_ and t.period.from_ > today
                 else "in force")
        rows.append({"terms": t, "version": v, "state": state})
    return render(request, "pages/policies.html", {
        "rows": rows, "problems": problems, "problem": problem,
        "directory": settings.policies_dir, "today": today})


# --- verify --------------------------------------------------------------------------------------


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, caller: Anyone) -> Response:
    return render(request, "pages/verify.html", {"result": None})


@router.post("/verify", response_class=HTMLResponse)
def verify_file(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: Anyone,
    file: Annotated[UploadFile, File()],
) -> Response:
    from registry.provenance.keys import ROOT_CERT, trust_anchors_pem
    from registry.provenance.service import load_matcher, verify_with_catalog

    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise MediaTooLarge(f"{file.filename}: over the limit of {settings.max_upload_bytes} "
                            "bytes")
    anchors = (None if settings.trust_anchors is None
               and not (settings.keys_dir / ROOT_CERT).is_file()
               else trust_anchors_pem(settings.trust_anchors, settings.keys_dir))
    matcher = load_matcher(session, index_dir=settings.home / "index",
                           max_distance=settings.pdq_match_distance)
    result = verify_with_catalog(session, data, anchors_pem=anchors,
                                 name=file.filename or "upload", matcher=matcher,
                                 max_bytes=settings.max_upload_bytes,
                                 max_pixels=settings.max_image_pixels).as_dict()
    ids = {m.get("asset_id") for m in result["matches"]} | {
        i.get("asset_id") for i in result["ingredients"]}
    assets = {}
    for asset_id in ids:
        if asset_id is not None:
            try:
                assets[int(asset_id)] = catalog.get_asset(session, int(asset_id))
            except RegistryError:
                continue
    record(session, actor=caller.name, action="provenance.verify",
           subject=f"file:{(file.filename or 'upload')[:150]}", state=result["state"])
    return render(request, "pages/verify.html",
                  {"result": result, "name": file.filename, "assets": assets})


# --- audit log -----------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, caller: Legal, actor: str = "",
               action: str = "", since: str = "", until: str = "", page: str = "1") -> Response:
    actor, action = actor[:200].strip(), action[:100].strip()
    try:
        start = dt.date.fromisoformat(since) if since else None
        end = dt.date.fromisoformat(until) if until else None
    except ValueError as exc:
        raise InvalidInput(f"dates are YYYY-MM-DD ({exc})") from None
    number = int(page) if page.isascii() and page.isdigit() and len(page) < 7 else 1
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if start:
        query = query.where(AuditEvent.at >= dt.datetime.combine(start, dt.time(), dt.UTC))
    if end:
        query = query.where(AuditEvent.at < dt.datetime.combine(
            end + dt.timedelta(days=1), dt.time(), dt.UTC))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = list(session.scalars(query.order_by(AuditEvent.id.desc())
                                  .offset((max(number, 1) - 1) * AUDIT_PER_PAGE)
                                  .limit(AUDIT_PER_PAGE)))
    actions = list(session.scalars(select(AuditEvent.action).distinct()
                                   .order_by(AuditEvent.action)))
    actors = list(session.scalars(select(AuditEvent.actor).distinct()
                                  .order_by(AuditEvent.actor).limit(200)))
    pages = max(1, -(-total // AUDIT_PER_PAGE))
    return render(request, "pages/audit.html", {
        "events": events, "total": total, "page": max(number, 1), "pages": pages,
        "actor": actor, "action": action, "since": since, "until": until,
        "actions": actions, "actors": actors})
