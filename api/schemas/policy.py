"""Shapes of the policy routes: decisions with explanations, loaded policies and versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.policy import Use

MAX_DECISION_BATCH = 10_000


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionRequest(Schema):
    assets: list[int | str] = Field(
        min_length=1, max_length=MAX_DECISION_BATCH, description="asset ids or sha256 hex"
    )
    licensee: str = Field(min_length=1, max_length=200)
    use: Use
    on: dt.date | None = Field(default=None, description="date of the use (default today)")
    model_family: str | None = Field(default=None, max_length=200)
    territory: str | None = Field(default=None, max_length=8, description="ISO 3166 code")
    resolution: int | None = Field(
        default=None, gt=0, description="largest side in px the licensee will use"
    )
    attribution: bool | None = Field(
        default=None, description="the licensee will credit the rightsholder"
    )


class PolicyVersionRead(Schema):
    file: str
    sha256: str
    loaded_at: dt.datetime
    policy_ids: list[str] = []


class ClauseRead(Schema):
    policy_id: str
    file: str
    line: int | None
    grant: str | None
    permission: str | None
    applied: bool
    level: str | None
    reason: str


class DecisionRead(Schema):
    asset_id: int
    sha256: str
    use: Use
    licensee: str
    on: dt.date | None
    outcome: str = Field(description="allowed, denied or review")
    rule: str = Field(description="the rule that settled it, e.g. rights_reserved")
    decided_by: str | None
    decided_by_version: PolicyVersionRead | None
    summary: str
    explanation: list[ClauseRead]


class DecisionBatch(Schema):
    decisions: list[DecisionRead]
    policy_versions: list[PolicyVersionRead]


class GrantRead(Schema):
    use: str
    permission: str
    constraint_info: str | None = None


class PolicyRead(Schema):
    id: str
    title: str | None
    licensor: str
    licensee: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    territories: list[str]
    model_families: list[str]
    scope: dict[str, Any]
    grants: list[GrantRead]
    file: str
    sha256: str


class PolicyList(Schema):
    policies: list[PolicyRead]
    versions: list[PolicyVersionRead]
