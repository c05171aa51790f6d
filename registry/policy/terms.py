"""The policy file format: Pydantic models that validate a YAML policy file.

Validating a licence file is a domain concern, so Pydantic is allowed here (and nowhere else in
registry/). The JSON Schema of `PolicyFile` is what `clearhouse policy schema` publishes.

A file holds either one licence (its fields at the top level) or several under `licences:`,
with `licensor` optionally given once at the top for all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry.vocabulary import Permission as Permission  # defined once for every area
from registry.vocabulary import Use as Use

POLICY_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
SHA256_LENGTH = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Selectors(_Strict):
    """Assets picked by id or sha256, by tag, or by franchise name."""

    franchises: tuple[str, ...] = ()
    assets: tuple[int | str, ...] = Field(default=(), description="asset ids or sha256 hex")
    tags: tuple[str, ...] = ()

    @field_validator("assets")
    @classmethod
    def _asset_keys(cls, value: tuple[int | str, ...]) -> tuple[int | str, ...]:
        for key in value:
            if isinstance(key, str) and (
                len(key) != SHA256_LENGTH or any(c not in "0123456789abcdefABCDEF" for c in key)
            ):
                raise ValueError(f"asset {key!r} is neither an id nor a sha256 hex digest")
        return tuple(k.lower() if isinstance(k, str) else k for k in value)

    @field_validator("tags")
    @classmethod
    def _lower_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in value)

    @property
    def empty(self) -> bool:
        return not (self.franchises or self.assets or self.tags)


class Scope(Selectors):
    """What a licence (or one grant) covers: the included selectors minus `exclude`.

    No included selector means every asset of the licensor.
    """

    exclude: Selectors = Selectors()


class Conditions(_Strict):
    """Machine-checkable conditions of a `constrained` grant."""

    max_resolution: int | None = Field(
        default=None, gt=0, description="largest side in pixels the licensee may use"
    )
    attribution_required: bool | None = None
    model_family: tuple[str, ...] | None = Field(
        default=None, description="model families the use is limited to"
    )
    expires: dt.date | None = None

    @field_validator("model_family", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (self.max_resolution, self.attribution_required, self.model_family,
                      self.expires)
        )


class Grant(_Strict):
    use: Use
    permission: Permission
    constraint_info: str | None = Field(
        default=None, description="what the constraint is, in words (CAWG constraint_info)"
    )
    conditions: Conditions | None = None
    scope: Scope | None = Field(
        default=None, description="narrows the licence scope for this grant only"
    )
    note: str | None = None

    @model_validator(mode="after")
    def _constrained_needs_words(self) -> Grant:
        if self.permission is not Permission.constrained and self.conditions is not None:
            raise ValueError("conditions are only for a 'constrained' grant")
        if self.permission is Permission.constrained and not (
            self.constraint_info or self.conditions
        ):
            raise ValueError("a 'constrained' grant needs constraint_info or conditions")
        return self


class Period(_Strict):
    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None

    @field_validator("to")
    @classmethod
    def _to_after_from(cls, value: dt.date | None, info: Any) -> dt.date | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError(f"'to' ({value}) is before 'from' ({start})")
        return value


class LicenceTerms(_Strict):
    """One licence: licensor, licensee, scope, period, territories, model families, grants."""

    id: str = Field(pattern=POLICY_ID_PATTERN, description="unique over all policy files")
    title: str | None = None
    licensor: str = Field(min_length=1, description="the rightsholder, as named in the catalog")
    licensee: str = Field(min_length=1, description="a licensee name, or '*' for anyone")
    scope: Scope = Scope()
    period: Period = Period()
    territories: tuple[str, ...] = Field(
        default=(), description="ISO 3166 codes; empty means worldwide"
    )
    model_families: tuple[str, ...] = Field(default=(), description="empty means any")
    grants: tuple[Grant, ...] = Field(min_length=1)
    notes: str | None = None

    @field_validator("territories")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().upper() for t in value)


class LicenceEntry(LicenceTerms):
    licensor: str = Field(default="", description="defaults to the file's licensor")


class PolicyFile(_Strict):
    """A policy file: one licence, or `licences:` (with an optional shared `licensor`)."""

    licensor: str | None = None
    licences: tuple[LicenceEntry, ...]

    @model_validator(mode="before")
    @classmethod
    def _single_licence(cls, data: Any) -> Any:
        if isinstance(data, dict) and "licences" not in data:
            return {"licences": [data]}
        return data

    @model_validator(mode="after")
    def _licensor_everywhere(self) -> PolicyFile:
        if not self.licences:
            raise ValueError("a policy file needs at least one licence")
        for i, lic in enumerate(self.licences):
            if not (lic.licensor or self.licensor):
                raise ValueError(f"licences[{i}]: licensor is required")
        return self

    def terms(self) -> list[LicenceTerms]:
        return [
            LicenceTerms.model_validate(
                {**lic.model_dump(by_alias=True), "licensor": lic.licensor or self.licensor}
            )
            for lic in self.licences
        ]


def policy_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a policy file (a single licence or a list of them).

    Both shapes share one `$defs` at the root, so every `#/$defs/...` reference resolves.
    """
    single = LicenceTerms.model_json_schema(by_alias=True)
    many = PolicyFile.model_json_schema(by_alias=True)
    defs: dict[str, Any] = {**single.pop("$defs", {}), **many.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Clearhouse policy file",
        "description": "One licence, or several under `licences` with a shared `licensor`.",
        "oneOf": [single, many],
        "$defs": defs,
    }
