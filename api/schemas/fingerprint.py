"""Schemas of the fingerprint area: the match JSON contract (DESIGN.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MatchRead(BaseModel):
    asset_id: int
    asset_sha256: str
    signal: str = Field(description="sha256, pdq, orb or sift")
    distance: int | float = Field(
        description="Hamming bits for pdq/phash; for sift the share of candidate "
        "correspondences RANSAC rejected (0..1). Lower is closer."
    )
    confidence: float = Field(ge=0, le=1)
    region: list[int] | None = Field(None, description="x, y, w, h in the query's pixels")
    time_s: float | None = Field(
        None, description="query time code (video query) or asset frame time (video asset)"
    )
    transform: str | None = None
    asset_time_s: float | None = None
    inliers: int | None = None
    time_codes: list[float] = Field(default_factory=list)
    kind: str = Field("copy", description="copy (the asset, verified), derivative (a verified "
                      "region of an edited version) or similar (a hash near its threshold, not "
                      "verified: review it)")
    outline: list[float] | None = Field(
        None, description="local features: the asset's corners (top-left, top-right, "
        "bottom-right, bottom-left) in the query's pixels as x0, y0, ..., x3, y3, not clipped")


class MatchResultRead(BaseModel):
    path: str
    error: str | None = None
    matches: list[MatchRead]


class MatchResponse(BaseModel):
    results: list[MatchResultRead]
