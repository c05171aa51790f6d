"""Reading a job's items a page at a time, and the legal review queue, for screens that must stay
fast at 100,000 items.

Pages use the (job_id, verdict, seq) index: a filtered page is an index range; the unfiltered
view lists verdicts one after another (review, blocked, error, clear: what needs a person first),
each segment an index range, so no page sorts the whole job. Thumbnails are not loaded here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer

from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.reports import counts_by_verdict
from registry.clearance.service import review_item
from registry.errors import InvalidInput

# What needs a person first.
VERDICT_ORDER = (Verdict.review.value, Verdict.blocked.value, Verdict.error.value,
                 Verdict.clear.value)
MAX_PAGE_ITEMS = 500
MAX_BULK_REVIEW = 1000
MAX_SEARCH_CHARS = 200
SEARCH_CHUNK = 900  # ids per IN (...) list, under every SQLite's variable limit
SEARCH_LOOKUPS = 4500  # more hits than this: read the job's verdict index instead


@dataclass(frozen=True)
class ItemPage:
    items: list[ClearanceItem]
    total: int  # items matching the filter
    counts: dict[str, int]  # per verdict, whole job


def _like(text: str) -> str:  # a substring, with LIKE's wildcards taken literally
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_items(
    session: Session,
    job_id: int,
    *,
    verdict: str | None = None,
    q: str | None = None,
    in_text: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> ItemPage:
    """One page of a job's items: filtered by verdict, searched in the item key (substring,
    case-insensitive; `in_text`: in ids and captions too), review-first when unfiltered, each
    segment in dataset order. Raises InvalidInput for an unknown verdict or a bad page."""
    if verdict is not None and verdict not in VERDICT_ORDER:
        raise InvalidInput(f"verdict {verdict!r} is not one of {', '.join(VERDICT_ORDER)}")
    if not 0 < limit <= MAX_PAGE_ITEMS or offset < 0:
        raise InvalidInput(f"page size must be 1-{MAX_PAGE_ITEMS} and offset >= 0")
    if q is not None and len(q) > MAX_SEARCH_CHARS:
        raise InvalidInput(f"search text is over {MAX_SEARCH_CHARS} characters")
    counts = counts_by_verdict(session, job_id)
    base = (select(ClearanceItem).options(defer(ClearanceItem.thumbnail))
            .where(ClearanceItem.job_id == job_id))
    segments = [verdict] if verdict else list(VERDICT_ORDER)
    if q:
        return _search(session, job_id, counts, segments, q, offset, limit, in_text=in_text)
    total = sum(counts.get(v, 0) for v in segments)
    items: list[ClearanceItem] = []
    skip = offset
    for segment in segments:
        size = counts.get(segment, 0)
        if skip >= size:
            skip -= size
            continue
        items.extend(session.scalars(
            base.where(ClearanceItem.verdict == segment).order_by(ClearanceItem.seq)
            .offset(skip).limit(limit - len(items))))
        skip = 0
        if len(items) >= limit:
            break
    return ItemPage(items=items, total=total, counts=counts)


def _search(session: Session, job_id: int, counts: dict[str, int], segments: list[str],
            q: str, offset: int, limit: int, *, in_text: bool) -> ItemPage:
    """Item keys are matched in the (job_id, item_key) index, so only the hits' rows are read;
    `in_text` also scans ids and captions (every row). Only (id, verdict, seq) of the hits are
    kept and sorted; the page's rows are then loaded by id."""
    pattern = _like(q)
    # SQLite's LIKE already ignores ASCII case (and ilike's lower() costs a call per row).
    sqlite = session.get_bind().dialect.name == "sqlite"

    def like(column: Any) -> Any:
        return (column.like if sqlite else column.ilike)(pattern, escape="\\")

    in_job = ClearanceItem.job_id == job_id
    text = like(ClearanceItem.item_key)
    if in_text:
        text = or_(text, like(ClearanceItem.item_id), like(ClearanceItem.caption))
    # Selecting the id alone lets the planner answer a key search from the (job_id, item_key)
    # index without reading rows; verdict and seq are then read for the hits only.
    hits = list(session.scalars(select(ClearanceItem.id).where(in_job, text)))
    wanted = set(segments)
    columns = select(ClearanceItem.id, ClearanceItem.verdict, ClearanceItem.seq)
    found: list[tuple[int, str, int]] = []
    if len(hits) > SEARCH_LOOKUPS:  # a broad search: one pass over the job's verdict index
        hit_set = set(hits)
        found = [r for r in session.execute(columns.where(in_job)).tuples()
                 if r[0] in hit_set and r[1] in wanted]
    else:
        for start in range(0, len(hits), SEARCH_CHUNK):
            found.extend(r for r in session.execute(columns.where(
                ClearanceItem.id.in_(hits[start:start + SEARCH_CHUNK]))).tuples()
                if r[1] in wanted)
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    found.sort(key=lambda r: (rank[str(r[1])], r[2]))
    ids = [r[0] for r in found[offset:offset + limit]]
    page = select(ClearanceItem).options(defer(ClearanceItem.thumbnail)).where(
        ClearanceItem.id.in_(ids))
    rows = {i.id: i for i in session.scalars(page)} if ids else {}
    return ItemPage(items=[rows[i] for i in ids], total=len(found), counts=counts)


def review_many(
    session: Session,
    *,
    job_id: int,
    items: Sequence[int],
    decision: str,
    comment: str,
    actor: str,
) -> list[ClearanceItem]:
    """Decide several items in review at once, all or none (the caller's transaction): each is
    one `review_item` call, so each is audited on its own. Raises InvalidInput when none or too
    many are given, and whatever `review_item` raises."""
    unique = list(dict.fromkeys(items))
    if not unique:
        raise InvalidInput("choose at least one item to decide")
    if len(unique) > MAX_BULK_REVIEW:
        raise InvalidInput(f"at most {MAX_BULK_REVIEW} items at once")
    return [review_item(session, job_id=job_id, item=i, decision=decision, comment=comment,
                        actor=actor) for i in unique]


@dataclass(frozen=True)
class QueueEntry:
    job: ClearanceJob
    waiting: int  # items still in review


def review_queue(session: Session, *, owner_key_id: int | None = None) -> list[QueueEntry]:
    """Jobs with items waiting for legal review, oldest job first."""
    query = (select(ClearanceJob, func.count(ClearanceItem.id))
             .join(ClearanceItem, ClearanceItem.job_id == ClearanceJob.id)
             .where(ClearanceItem.verdict == Verdict.review.value)
             .group_by(ClearanceJob.id).order_by(ClearanceJob.id))
    if owner_key_id is not None:
        query = query.where(ClearanceJob.owner_key_id == owner_key_id)
    return [QueueEntry(job, int(n)) for job, n in session.execute(query)]


@dataclass(frozen=True)
class LegalNow:
    """What needs legal now (the console's home page)."""

    items_in_review: int
    jobs_in_review: int
    jobs_running: list[ClearanceJob]
    certificates_this_week: list[ClearanceJob]


def legal_now(session: Session, *, now: dt.datetime, owner_key_id: int | None = None
              ) -> LegalNow:
    mine = ([] if owner_key_id is None
            else [ClearanceJob.owner_key_id == owner_key_id])
    in_review, jobs_in_review = session.execute(
        select(func.count(ClearanceItem.id), func.count(func.distinct(ClearanceItem.job_id)))
        .join(ClearanceJob, ClearanceJob.id == ClearanceItem.job_id)
        .where(ClearanceItem.verdict == Verdict.review.value, *mine)).one()
    running = list(session.scalars(
        select(ClearanceJob).where(ClearanceJob.status.in_(
            [JobStatus.pending.value, JobStatus.running.value]), *mine)
        .order_by(ClearanceJob.id)))
    week_ago = now - dt.timedelta(days=7)
    certified = list(session.scalars(
        select(ClearanceJob).where(ClearanceJob.certified_at >= week_ago, *mine)
        .order_by(ClearanceJob.certified_at.desc())))
    return LegalNow(items_in_review=int(in_review), jobs_in_review=int(jobs_in_review),
                    jobs_running=running, certificates_this_week=certified)
