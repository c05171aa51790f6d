"""Shapes of the catalog routes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class RightsholderCreate(Schema):
    name: str = Field(min_length=1, max_length=200)


class RightsholderRead(Schema):
    id: int
    name: str
    created_at: dt.datetime


class FranchiseCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    rightsholder: str = Field(min_length=1, max_length=200, description="rightsholder name")


class FranchiseRead(Schema):
    id: int
    name: str
    rightsholder_id: int
    created_at: dt.datetime


class AssetRead(Schema):
    id: int
    kind: str
    title: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    duration_s: float | None
    media_type: str
    original_name: str | None
    rightsholder_id: int
    franchise_id: int | None
    tags: list[str]
    created_at: dt.datetime


class AssetUpload(Schema):
    status: Literal["created", "existing"]
    asset: AssetRead


class Page(Schema):
    total: int
    offset: int
    limit: int


class AssetPage(Page):
    items: list[AssetRead]


class LicenceCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    licensor: str = Field(min_length=1, max_length=200, description="rightsholder name")
    licensee: str = Field(min_length=1, max_length=200, description="licensee name, or '*'")
    scope: dict[str, list[Any]] = Field(
        default_factory=dict, description="keys: franchises, assets, tags, exclude_*"
    )
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    territories: list[str] = Field(default_factory=list)
    model_families: list[str] = Field(default_factory=list)
    policy_file: str | None = None
    notes: str | None = None


class LicenceRead(Schema):
    id: int
    name: str
    licensor_id: int
    licensee: str
    scope: dict[str, Any]
    valid_from: dt.date | None
    valid_to: dt.date | None
    territories: list[str]
    model_families: list[str]
    policy_file: str | None
    notes: str | None
    created_at: dt.datetime
