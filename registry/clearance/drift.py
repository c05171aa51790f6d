"""Changes to a job's items after its certificate was issued.

A certificate signs the verdict counts and the digest of the JSON report. Nothing in the registry
changes a certified job's items (review refuses), so a difference means someone edited the
database: `certificate_drift` says what differs, and `clearances show` / `certificate verify`
print it as a warning.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.orm import Session

from registry.clearance.models import ClearanceJob
from registry.clearance.reports import build_report, counts_by_verdict, report_digest


def certified_statement(envelope: dict[str, Any] | None) -> dict[str, Any] | None:
    """The in-toto statement inside a stored DSSE envelope (None if there is none)."""
    if not envelope:
        return None
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", ""))))
    except (ValueError, UnicodeDecodeError):
        return None
    return statement if isinstance(statement, dict) else None


def certificate_drift(session: Session, job: ClearanceJob) -> list[str]:
    """What differs between the job's items now and what its certificate says (empty when they
    agree or the job has no certificate)."""
    statement = certified_statement(job.certificate)
    if statement is None:
        return []
    predicate = statement.get("predicate") or {}
    problems = []
    certified = {k: int(v) for k, v in (predicate.get("counts") or {}).items()}
    now = counts_by_verdict(session, job.id)
    changed = {k: (certified.get(k, 0), now.get(k, 0))
               for k in sorted(set(certified) | set(now)) if certified.get(k, 0) != now.get(k, 0)}
    if changed:
        problems.append("verdict counts changed after the certificate was issued: " + ", ".join(
            f"{k} {was} -> {is_}" for k, (was, is_) in changed.items()))
    signed_digest = ((predicate.get("report") or {}).get("digest") or {}).get("sha256")
    report = build_report(session, job)
    report["job"]["certified"] = False  # as it was when the report was signed
    if signed_digest and signed_digest != report_digest(report):
        problems.append("items changed after the certificate was issued (the report no longer "
                        "matches the certified report digest)")
    return problems
