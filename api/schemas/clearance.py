"""Shapes of the clearance routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

UseName = Literal["ai_training", "ai_generative_training", "ai_inference", "data_mining"]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class ClearanceCreate(Schema):
    dataset: str = Field(min_length=1, max_length=4000,
                         description="server-side path under an allowed root: folder, archive, "
                                     "WebDataset shards or CSV/JSONL/Parquet manifest")
    use: UseName
    licensee: str = Field(min_length=1, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    workers: int = Field(default=1, ge=1, le=64)
    batch_size: int = Field(default=16, ge=1, le=10_000)
    engine: Literal["local", "ray"] = Field(
        default="local", description="local: a process pool on the worker; ray: Ray Data actors "
                                     "(the worker needs the clearhouse[ray] extra)")
    path_column: str = Field(default="path", min_length=1, max_length=200)
    id_column: str = Field(default="id", min_length=1, max_length=200)
    caption_column: str = Field(default="caption", min_length=1, max_length=200)


class ClearanceRead(Schema):
    id: int
    status: str
    use: str
    licensee: str
    model: str | None
    owner: str
    workers: int
    batch_size: int
    total_items: int | None
    done_items: int
    policy_versions: list[dict[str, Any]]
    catalog_snapshot: dict[str, Any]
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    certified: bool
    summary: dict[str, int]


class MatchRead(Schema):
    asset_id: int
    asset_sha256: str | None
    signal: str
    distance: float | int | None
    confidence: float | None = None
    region: Any = None
    time_s: float | None = None
    transform: str | None = None
    kind: str | None = Field(None, description="copy (the asset, verified), derivative (a "
                             "verified region of an edited version) or similar (a hash near its "
                             "threshold, not verified: always review)")
    decision: str | None
    explanation: str | None
    rule: str | None = None
    decided_by: str | None = None


class ItemRead(Schema):
    item: int
    key: str
    path: str
    id: str | None
    caption: str | None
    url: str | None = None
    sha256: str | None
    size_bytes: int | None
    verdict: str
    machine_verdict: str
    matches: list[MatchRead]
    signals: list[dict[str, Any]]
    error: str | None
    review: dict[str, Any] | None


class ReviewCreate(Schema):
    decision: Literal["allowed", "blocked"]
    comment: str = Field(min_length=1, max_length=4000)


class CertificateCheckRead(Schema):
    valid: bool
    reason: str
    signer: str | None
    dataset_digest: str | None
    dataset_checked: bool
    use: str | None
    licensee: str | None
    model: str | None
    counts: dict[str, int] | None
    differences: list[dict[str, Any]] = Field(
        default_factory=list, description="items keeping a dataset from being the certified "
        "cleared subset, and why (empty without a dataset check)")
    statement: dict[str, Any] | None
