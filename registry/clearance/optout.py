"""Machine-readable opt-out signals an item carries, read for the use a clearance asks about.

Three vocabularies (DESIGN.md, "Standards to build on"):
- IPTC / PLUS `plus:DataMining` in XMP, values `http://ns.useplus.org/ldf/vocab/DMI-...`;
- TDMRep in XMP (`tdm:reservation` 1 = rights reserved, `tdm:policy` = a licence is on offer);
- C2PA / CAWG training-mining assertions in an embedded manifest (read through
  registry.provenance, which validates the entries; `constrained` counts as notAllowed unless a
  licence grants the use).

Each signal that speaks about the use becomes `{"signal", "value", "permission"}` with permission
`allowed`, `constrained` or `notAllowed`. The XMP scan is a byte search (no decode), and the C2PA
reader only runs when the bytes contain a C2PA JUMBF label, so items without signals cost almost
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.vocabulary import most_restrictive as most_restrictive_permission

DMI_PREFIX = "http://ns.useplus.org/ldf/vocab/"
_DMI = re.compile(rb"plus:DataMining\s*(?:=\s*[\"']|>\s*)(?:<rdf:[^>]*>\s*)?([^\"'<\s]+)")
_TDM_RESERVATION = re.compile(rb"tdm:reservation\s*(?:=\s*[\"']|>\s*)([01])")
_TDM_POLICY = re.compile(rb"tdm:policy\s*(?:=\s*[\"']|>\s*)([^\"'<\s]+)")
TRAINING_USES = ("ai_training", "ai_generative_training")

# IPTC PLUS Data Mining values -> permission per use (absent: the value says nothing of the use).
_DMI_PERMISSIONS: dict[str, dict[str, str]] = {
    "DMI-UNSPECIFIED": {},
    "DMI-ALLOWED": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "allowed"),
    "DMI-ALLOWED-noncommercial": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "constrained"),
    "DMI-PROHIBITED-AIMLTRAINING": dict.fromkeys(TRAINING_USES, "notAllowed"),
    "DMI-PROHIBITED-GENAIMLTRAINING": {"ai_generative_training": "notAllowed"},
    "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "notAllowed"),
    "DMI-PROHIBITED": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "notAllowed"),
    "DMI-PROHIBITED-SEECONSTRAINT": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "constrained"),
    "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR": dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "constrained"),
}


def _xmp_signals(data: bytes, use: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if b"DataMining" in data:
        for raw in _DMI.findall(data):
            value = raw.decode("utf-8", "replace")
            code = value.removeprefix(DMI_PREFIX)
            permission = _DMI_PERMISSIONS.get(code, {}).get(use)
            if code not in _DMI_PERMISSIONS:
                permission = "constrained"  # an unknown DMI value: a person must read it
            if permission is not None:
                found.append({"signal": "iptc-plus", "value": value, "permission": permission})
    if b"tdm:" in data:
        reserved = _TDM_RESERVATION.search(data)
        if reserved is not None and reserved.group(1) == b"1":
            policy = _TDM_POLICY.search(data)
            value = "tdm-reservation=1" + (
                f"; tdm-policy={policy.group(1).decode('utf-8', 'replace')}" if policy else "")
            # Rights reserved; with a policy, a licence is on offer: legal must look.
            found.append({"signal": "tdmrep", "value": value,
                          "permission": "constrained" if policy else "notAllowed"})
    return found


def _c2pa_signals(data: bytes, use: str) -> list[dict[str, Any]]:
    if b"c2pa" not in data:
        return []
    from registry.errors import RegistryError
    from registry.provenance.c2pa_adapter import read_manifest
    from registry.provenance.training import read_training_mining
    from registry.provenance.verify import sniff_media_type

    media_type = sniff_media_type(data)
    if media_type is None:
        return []
    try:
        outcome = read_manifest(data, media_type, anchors_pem=None)
    except RegistryError:
        return []
    store = outcome.store or {}
    manifests = store.get("manifests") or {}
    manifest = manifests.get(store.get("active_manifest")) or {}
    assertions = [a for a in manifest.get("assertions") or [] if isinstance(a, Mapping)]
    training = read_training_mining(assertions)
    if training is None or use not in training.uses:
        return []
    permission = training.uses[use]
    signal: dict[str, Any] = {"signal": "c2pa", "value": ", ".join(training.assertions),
                              "permission": permission.permission.value,
                              "manifest_state": outcome.state}
    if permission.constraint_info:
        signal["constraint_info"] = permission.constraint_info
    return [signal]


def read_opt_out_signals(data: bytes, *, use: str) -> list[dict[str, Any]]:
    """Every opt-out signal in `data` that speaks about `use` (never raises)."""
    return [*_xmp_signals(data, use), *_c2pa_signals(data, use)]


def most_restrictive(signals: list[dict[str, Any]]) -> str | None:
    """The most restrictive permission among `signals` (None when there is none)."""
    if not signals:
        return None
    worst = most_restrictive_permission(str(s["permission"]) for s in signals)
    return None if worst is None else worst.value
