"""Audit routes: GET /v1/audit (the log, newest first) and GET /v1/audit/verify (legal, admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, requires
from registry.access import ApiKey, Role
from registry.audit import event_dict, events, verify_log
from registry.db import MAX_ROW_ID

router = APIRouter(prefix="/v1", tags=["audit"])

Auditor = Annotated[ApiKey, Depends(requires(Role.legal))]


@router.get("/audit")
def list_audit_events(
    session: SessionDep,
    _: Auditor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_seq: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID,
                                            description="page back: entries before this seq")]
    = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Audit entries, newest first, each with its place in the hash chain."""
    rows = events(session, subject=subject, action=action, limit=limit, before_seq=before_seq)
    return {"events": [event_dict(e) for e in rows]}


@router.get("/audit/verify")
def verify_audit_log(session: SessionDep, _: Auditor) -> dict[str, Any]:
    """Walk the whole chain: `ok` is false, with the entries concerned, when anything was
    edited, removed or forged."""
    return verify_log(session).as_dict()
