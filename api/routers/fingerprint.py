"""Fingerprint routes: POST /v1/match (multipart upload of one file or a small batch)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep, requires
from api.limits import decode_slot
from api.schemas.fingerprint import MatchResponse
from registry.access import ApiKey, Role
from registry.errors import InvalidInput
from registry.fingerprint import Matcher, MatchResult

router = APIRouter(prefix="/v1", tags=["fingerprint"])

Caller = Annotated[ApiKey, Depends(requires(Role.legal, Role.ml, Role.partner))]
MAX_BATCH_FILES = 16

# One loaded Matcher per index folder; it picks up appended segments (new assets) at most every
# REFRESH_SECONDS, reading only the new segments.
_MATCHERS: dict[Path, Matcher] = {}
_LOCK = threading.Lock()


def _matcher(session: Session, index_dir: Path, max_distance: int) -> Matcher:
    with _LOCK:
        held = _MATCHERS.get(index_dir)
        if held is None or held.max_distance != max_distance:
            held = Matcher.load(session, index_dir=index_dir, max_distance=max_distance)
            _MATCHERS[index_dir] = held
        else:
            held.refresh(session)
        return held


@router.post("/match", response_model=MatchResponse)
def match(
    session: SessionDep,
    settings: SettingsDep,
    _: Caller,
    files: Annotated[list[UploadFile], File(description="images or videos to match")],
) -> object:
    """Find catalog assets in each uploaded file. A bad file gets its own error; the others
    are still matched."""
    if not files:
        raise InvalidInput("no files uploaded")
    if len(files) > MAX_BATCH_FILES:
        raise InvalidInput(f"at most {MAX_BATCH_FILES} files per request, got {len(files)}")
    matcher = _matcher(session, settings.home / "index", settings.pdq_match_distance)
    results = []
    for upload in files:
        name = upload.filename or "upload"
        data = upload.file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            results.append(MatchResult(
                name, f"{name}: upload is over the limit of {settings.max_upload_bytes} bytes"))
            continue
        with decode_slot():
            results.append(matcher.match_file(data, name=name,
                                              max_bytes=settings.max_upload_bytes,
                                              max_pixels=settings.query_pixels))
    return {"results": [r.as_dict() for r in results]}
