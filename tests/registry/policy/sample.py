"""A small, deliberately tricky policy set for the decision tests (not the demo's policies/)."""

from __future__ import annotations

from pathlib import Path

from registry.policy import AssetFacts, PolicySet, load_policies

STUDIO_A = """\
licensor: Studio A
licences:
  - id: a-partner
    licensee: Partner
    scope:
      franchises: [Alpha]
      exclude:
        tags: [secret]
        assets: [13]
    period: {from: 2026-01-01, to: 2026-12-31}
    grants:
      - {use: ai_training, permission: allowed}
      - {use: ai_inference, permission: allowed}
      - {use: ai_generative_training, permission: notAllowed}
      - use: ai_generative_training
        permission: allowed
        scope: {tags: [promo]}
      - use: data_mining
        permission: constrained
        constraint_info: small and credited
        conditions: {max_resolution: 1024, attribution_required: true}
  - id: a-everyone-beta
    licensee: "*"
    scope: {franchises: [Beta]}
    grants:
      - {use: ai_inference, permission: notAllowed}
      - {use: ai_training, permission: allowed}
  - id: a-partner-beta
    licensee: Partner
    scope: {franchises: [Beta]}
    grants:
      - {use: ai_inference, permission: allowed}
      - use: ai_training
        permission: constrained
        conditions: {model_family: [vision], expires: 2026-06-30}
      - use: data_mining
        permission: constrained
        constraint_info: ask legal first
  - id: a-gamma
    licensee: Partner
    scope: {franchises: [Gamma]}
    grants:
      - {use: data_mining, permission: notAllowed}
      - {use: data_mining, permission: allowed, scope: {assets: [42]}}
      - {use: data_mining, permission: allowed, scope: {tags: [open]}}
      - {use: ai_training, permission: allowed}
      - {use: ai_training, permission: notAllowed, scope: {tags: [stunt]}}
  - id: a-territory
    licensee: Regional
    territories: [FR, DE]
    model_families: [vision]
    grants:
      - {use: ai_inference, permission: allowed}
"""

BSHA = "ab" * 32

STUDIO_B = f"""\
licensor: Studio B
licences:
  - id: b-expired
    licensee: Partner
    period: {{from: 2024-01-01, to: 2025-06-30}}
    grants:
      - {{use: ai_training, permission: allowed}}
  - id: b-future
    licensee: Partner
    period: {{from: 2027-01-01}}
    grants:
      - {{use: data_mining, permission: allowed}}
  - id: b-by-sha
    licensee: Partner
    scope: {{assets: ["{BSHA}"]}}
    grants:
      - {{use: ai_inference, permission: allowed}}
"""

STUDIO_A_IDS = {"a-partner", "a-everyone-beta", "a-partner-beta", "a-gamma", "a-territory"}


def write_sample(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "studio-a.yaml").write_text(STUDIO_A, encoding="utf-8")
    (directory / "studio-b.yml").write_text(STUDIO_B, encoding="utf-8")
    return directory


def sample_set(tmp: Path) -> PolicySet:
    return load_policies(write_sample(tmp / "policies"))


def facts(asset_id: int, holder: str, franchise: str | None, *tags: str,
          size: tuple[int, int] | None = None, sha: str | None = None) -> AssetFacts:
    return AssetFacts(
        asset_id=asset_id,
        sha256=sha or f"{asset_id:064x}",
        rightsholder=holder,
        franchise=franchise,
        tags=tags,
        width=size[0] if size else None,
        height=size[1] if size else None,
    )


ASSETS = {
    "alpha": facts(1, "Studio A", "Alpha"),
    "alpha_secret": facts(2, "Studio A", "Alpha", "secret"),
    "alpha_13": facts(13, "Studio A", "Alpha"),
    "alpha_promo": facts(3, "Studio A", "Alpha", "promo"),
    "alpha_small": facts(4, "Studio A", "Alpha", size=(800, 600)),
    "alpha_big": facts(5, "Studio A", "Alpha", size=(4000, 3000)),
    "beta": facts(6, "Studio A", "Beta"),
    "gamma": facts(7, "Studio A", "Gamma"),
    "gamma_42": facts(42, "Studio A", "Gamma"),
    "gamma_open": facts(8, "Studio A", "Gamma", "open"),
    "gamma_stunt": facts(9, "Studio A", "Gamma", "stunt"),
    "a_loose": facts(10, "Studio A", None),
    "b": facts(20, "Studio B", "B-film"),
    "b_sha": facts(21, "Studio B", None, sha=BSHA),
    "c": facts(30, "Studio C", "Nobody's"),
}
