"""Shapes of the provenance routes: the verification result (the `clearhouse verify --json`
shape of DESIGN.md, plus details)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    code: str
    reason: str
    explanation: str | None = None


class Signer(BaseModel):
    common_name: str | None
    issuer: str | None
    alg: str | None
    serial: str | None
    time: str | None
    trusted: bool = Field(description="the chain reaches a configured trust anchor")


class VerifyRead(BaseModel):
    model_config = ConfigDict(extra="allow")

    state: Literal["valid", "invalid", "untrusted", "no_manifest"]
    codes: list[str] = Field(description="C2PA failure codes")
    message: str
    reasons: list[Reason]
    signer: Signer | None
    actions: list[dict[str, Any]]
    training_mining: dict[str, Any] | None = Field(
        description="validated cawg./c2pa. training-mining entries; `problems` lists entries "
        "that were not trusted")
    ingredients: list[dict[str, Any]]
    matches: list[dict[str, Any]] = Field(description="catalog assets the file or its "
                                          "ingredients match")
    media_type: str | None
    manifest: str | None
    title: str | None
    claim_generator: str | None
    generation: dict[str, Any] | None
    remote_url: str | None
    manifest_count: int
    c2pa_state: str | None
    recovered: dict[str, Any] | None = Field(
        default=None,
        description="for a file with no manifest that we signed: the manifest found again in "
        "the manifest repository (message, manifest_id, studio, signed_at, signer, match, "
        "validation, actions, ingredients, training_mining)")


class SigningKeysRead(BaseModel):
    signing: dict[str, Any]
    root: dict[str, Any]
    trust_anchors_pem: str
