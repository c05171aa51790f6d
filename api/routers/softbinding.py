"""The C2PA Soft Binding Resolution API (spec 2.2, OpenAPI "C2PA Soft Binding Resolution API"
1.1.0), served under /v1 like the rest of the API:

- `GET /v1/matches/byBinding?alg&value&maxResults`, `POST /v1/matches/byBinding` (JSON
  `{alg, value}`): manifests whose soft binding matches (`io.iscc.v0`, or our
  `com.clearhouse.pdq`);
- `POST /v1/matches/byContent?maxResults` (the asset itself as the body, `image/*` or
  `video/*`): manifests of this content, by any of our lookups (sha256, ISCC, PDQ);
- `GET /v1/manifests/{manifestId}`: the stored manifest store, `application/c2pa`;
- `GET /v1/services/supportedAlgorithms`.

Results are `{"matches": [{"manifestId", "similarityScore"}]}` (0-100), best first. The spec's
OAuth scope `fetch:manifests` maps to the partner role (admin passes). Every route is rate-limited
per API key (`CLEARHOUSE_SBR_REQUESTS_PER_MINUTE`): over the limit answers 429 with Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ManifestIndexDep, SessionDep, SettingsDep, requires
from registry.access import ApiKey, Role
from registry.errors import InvalidInput, MediaTooLarge
from registry.provenance.c2pa_adapter import MANIFEST_STORE_TYPE
from registry.provenance.errors import InvalidSoftBinding
from registry.provenance.repository import (
    DEFAULT_MAX_RESULTS,
    SUPPORTED_ALGORITHMS,
    RepositoryMatch,
    find_by_binding,
    find_by_file,
    get_manifest_record,
)

router = APIRouter(prefix="/v1", tags=["soft binding resolution"])
MAX_RESULTS_CAP = 100
SUPPORTED_ALGS = tuple(a["alg"] for a in SUPPORTED_ALGORITHMS["fingerprints"])


class RateLimiter:
    """A token bucket per API key: `per_minute` requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, key_id: int) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / rate


def _limiter(request: Request, per_minute: int) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "sbr_limiter", None)
    if limiter is None or limiter.per_minute != per_minute:
        limiter = RateLimiter(per_minute)
        state.sbr_limiter = limiter
    return limiter


def fetch_manifests(
    request: Request,
    settings: SettingsDep,
    key: Annotated[ApiKey, Depends(requires(Role.partner))],
) -> ApiKey:
    """The `fetch:manifests` scope: a partner key (or admin), within its rate limit."""
    wait = _limiter(request, settings.sbr_requests_per_minute).take(key.id)
    if wait > 0:
        raise HTTPException(
            429, f"rate limit of {settings.sbr_requests_per_minute} requests per minute "
                 "exceeded", headers={"Retry-After": str(math.ceil(wait))})
    return key


Partner = Annotated[ApiKey, Depends(fetch_manifests)]


class SoftBindingMatch(BaseModel):
    manifestId: str = Field(description="The manifest's label (urn:c2pa:...)")
    endpoint: str | None = Field(default=None, description="Not used: manifests are here")
    similarityScore: int = Field(ge=0, le=100, description="100: same bytes or same code")


class SoftBindingQueryResult(BaseModel):
    matches: list[SoftBindingMatch]


class SoftBindingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alg: str = Field(max_length=200, description="io.iscc.v0 or com.clearhouse.pdq")
    value: str = Field(max_length=4096, description="base64 of the soft binding value")


class AlgorithmEntry(BaseModel):
    alg: str


class SupportedAlgorithms(BaseModel):
    watermarks: list[AlgorithmEntry]
    fingerprints: list[AlgorithmEntry]


MaxResults = Annotated[int, Query(alias="maxResults", ge=1, le=MAX_RESULTS_CAP,
                                  description="The most manifest ids to return")]


def _result(matches: list[RepositoryMatch]) -> dict[str, Any]:
    return {"matches": [{"manifestId": m.manifest_id, "similarityScore": m.similarity}
                        for m in matches]}


@router.get("/matches/byBinding", response_model=SoftBindingQueryResult,
            response_model_exclude_none=True, operation_id="queryByBinding")
def query_by_binding(
    index: ManifestIndexDep,
    session: SessionDep,
    _: Partner,
    alg: Annotated[str, Query(max_length=200, description="soft binding algorithm")],
    value: Annotated[str, Query(max_length=4096, description="base64 soft binding value")],
    max_results: MaxResults = DEFAULT_MAX_RESULTS,
) -> object:
    """Manifest ids whose soft binding matches the value."""
    return _result(find_by_binding(session, index, alg=alg, value=value,
                                   max_results=max_results))


@router.post("/matches/byBinding", response_model=SoftBindingQueryResult,
             response_model_exclude_none=True, operation_id="queryByLargeBinding")
def query_by_large_binding(
    index: ManifestIndexDep,
    session: SessionDep,
    _: Partner,
    query: Annotated[SoftBindingQuery, Body()],
    max_results: MaxResults = DEFAULT_MAX_RESULTS,
) -> object:
    """As GET, with the binding in a JSON body."""
    return _result(find_by_binding(session, index, alg=query.alg, value=query.value,
                                   max_results=max_results))


@router.post(
    "/matches/byContent",
    response_model=SoftBindingQueryResult,
    response_model_exclude_none=True,
    operation_id="uploadFile",
    openapi_extra={"requestBody": {"required": True, "description": "the asset itself", "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "video/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
def query_by_content(
    index: ManifestIndexDep,
    session: SessionDep,
    settings: SettingsDep,
    _: Partner,
    body: Annotated[bytes, Body(media_type="application/octet-stream")],
    max_results: MaxResults = DEFAULT_MAX_RESULTS,
    alg: Annotated[str | None, Query(max_length=200, description="a supported algorithm; every "
                                     "lookup of ours runs whichever is named")] = None,
    hint_alg: Annotated[str | None, Query(alias="hintAlg", max_length=200)] = None,
    hint_value: Annotated[str | None, Query(alias="hintValue", max_length=4096)] = None,
) -> object:
    """Manifest ids of this asset: the same signed file, its ISCC code, or our fingerprints;
    a `hintAlg`/`hintValue` binding is looked up too and its manifests merged in."""
    if alg is not None and alg not in SUPPORTED_ALGS:
        raise InvalidSoftBinding(f"alg: {alg!r} is not supported here (supported: "
                                 f"{', '.join(SUPPORTED_ALGS)})", detail={"alg": alg})
    if (hint_alg is None) != (hint_value is None):
        raise InvalidSoftBinding("hintAlg and hintValue go together")
    if len(body) > settings.max_upload_bytes:
        raise MediaTooLarge(f"body: over the limit of {settings.max_upload_bytes} bytes")
    if not body:
        raise InvalidInput("body: send the asset's bytes (image/* or video/*)")
    hinted = find_by_binding(session, index, alg=hint_alg, value=hint_value,
                             max_results=max_results) if hint_alg and hint_value else []
    found = find_by_file(session, index, body, name="body", max_results=max_results,
                         max_bytes=settings.max_upload_bytes,
                         max_pixels=settings.max_image_pixels)
    merged = {m.manifest_id: m for m in hinted}
    for m in found:
        held = merged.get(m.manifest_id)
        if held is None or m.similarity > held.similarity:
            merged[m.manifest_id] = m
    best = sorted(merged.values(), key=lambda m: (-m.similarity, m.distance, -m.record_id))
    return _result(best[:max_results])


@router.get("/manifests/{manifestId}", response_class=Response, operation_id="getManifestById",
            responses={200: {"content": {MANIFEST_STORE_TYPE: {}},
                             "description": "the C2PA manifest store"},
                       404: {"description": "no such manifest"}})
def get_manifest(
    session: SessionDep,
    _: Partner,
    manifest_id: Annotated[str, Path(alias="manifestId", max_length=200)],
    return_active_manifest: Annotated[bool, Query(alias="returnActiveManifest")] = False,
) -> Response:
    """The manifest store as signed (it holds only the active manifest: the whole store is
    returned either way)."""
    record = get_manifest_record(session, manifest_id)
    return Response(record.store, media_type=MANIFEST_STORE_TYPE)


@router.get("/services/supportedAlgorithms", response_model=SupportedAlgorithms,
            operation_id="getSupportedAlgorithms")
def supported_algorithms(_: Partner) -> object:
    """The soft binding algorithms this service resolves."""
    return SUPPORTED_ALGORITHMS
