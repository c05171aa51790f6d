"""Export a licence as ODRL 2.2 JSON-LD so that partners' tools can read it.

What maps (README, "Licence policies"):
licensor -> assigner, licensee -> assignee (an `Offer` with no
assignee for `*`), `allowed` -> permission, `notAllowed` -> prohibition, period -> `dateTime`
constraints, territories -> `spatial`, `max_resolution` -> `resolution`, `attribution_required`
-> an `attribute` duty, `expires` -> a `dateTime` constraint, free-text constraints -> an
`obtainConsent` duty plus the text, and our conflict rule -> `"conflict": "prohibit"`.
The use is `odrl:use` refined by a `purpose` naming the CAWG entry (`cawg.ai_training`...).
What does not: scopes by franchise, tag and exclusions, model families and the specificity rule
have no ODRL term; they are written under our own `clearhouse:` namespace, which other tools
ignore.
"""

from __future__ import annotations

from typing import Any

from registry.policy.terms import Conditions, Grant, LicenceTerms, Permission, Scope

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
CLEARHOUSE_NS = "urn:com.clearhouse:odrl:"
CONTEXT: list[Any] = [
    ODRL_CONTEXT,
    {
        "clearhouse": CLEARHOUSE_NS,
        "dc": "http://purl.org/dc/terms/",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    },
]


def _party(name: str) -> dict[str, Any]:
    slug = "-".join(name.lower().split())
    return {"@type": "Party", "uid": f"urn:com.clearhouse:party:{slug}", "dc:title": name}


def _date(value: object) -> dict[str, str]:
    return {"@value": str(value), "@type": "xsd:date"}


def _target(policy_id: str, scope: Scope, suffix: str = "") -> dict[str, Any] | str:
    uid = f"urn:com.clearhouse:policy:{policy_id}:scope{suffix}"
    if scope.empty and scope.exclude.empty:
        return {"@type": "AssetCollection", "uid": uid, "clearhouse:all": True}
    target: dict[str, Any] = {"@type": "AssetCollection", "uid": uid}
    for name in ("franchises", "tags", "assets"):
        values = list(getattr(scope, name))
        if values:
            target[f"clearhouse:{name}"] = values
    ex = {n: list(getattr(scope.exclude, n)) for n in ("franchises", "tags", "assets")
          if getattr(scope.exclude, n)}
    if ex:
        target["clearhouse:exclude"] = ex
    return target


def _constraints(t: LicenceTerms, c: Conditions | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if t.period.from_ is not None:
        out.append({"leftOperand": "dateTime", "operator": "gteq",
                    "rightOperand": _date(t.period.from_)})
    if t.period.to is not None:
        out.append({"leftOperand": "dateTime", "operator": "lteq",
                    "rightOperand": _date(t.period.to)})
    if t.territories:
        out.append({"leftOperand": "spatial", "operator": "isAnyOf",
                    "rightOperand": list(t.territories)})
    if t.model_families:
        out.append({"leftOperand": "clearhouse:modelFamily", "operator": "isAnyOf",
                    "rightOperand": list(t.model_families)})
    if c is not None:
        if c.expires is not None:
            out.append({"leftOperand": "dateTime", "operator": "lteq",
                        "rightOperand": _date(c.expires)})
        if c.max_resolution is not None:
            out.append({"leftOperand": "resolution", "operator": "lteq",
                        "rightOperand": c.max_resolution, "unit": "clearhouse:pixelsLongSide"})
        if c.model_family is not None:
            out.append({"leftOperand": "clearhouse:modelFamily", "operator": "isAnyOf",
                        "rightOperand": list(c.model_family)})
    return out


def _rule(t: LicenceTerms, g: Grant, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "uid": f"urn:com.clearhouse:policy:{t.id}:grants:{index}",
        "target": _target(t.id, g.scope, f":grants:{index}") if g.scope else _target(t.id, t.scope),
        "assigner": _party(t.licensor),
        "action": {
            "rdf:value": {"@id": "odrl:use"},
            "refinement": [{"leftOperand": "purpose", "operator": "eq",
                            "rightOperand": f"cawg.{g.use}"}],
        },
    }
    if t.licensee != "*":
        rule["assignee"] = _party(t.licensee)
    constraints = _constraints(t, g.conditions)
    if constraints:
        rule["constraint"] = constraints
    if g.permission is Permission.constrained:
        duties: list[dict[str, Any]] = []
        if g.conditions is not None and g.conditions.attribution_required:
            duties.append({"action": "attribute"})
        if g.conditions is None or g.conditions.empty:
            duties.append({"action": "obtainConsent"})  # words only: a person has to agree
        if duties:
            rule["duty"] = duties
        if g.constraint_info:
            rule["dc:description"] = g.constraint_info
    return rule


def to_odrl(terms: LicenceTerms) -> dict[str, Any]:
    """One licence as an ODRL `Agreement` (an `Offer` when the licensee is `*`)."""
    policy: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "Offer" if terms.licensee == "*" else "Agreement",
        "uid": f"urn:com.clearhouse:policy:{terms.id}",
        "profile": f"{CLEARHOUSE_NS}profile",
        "conflict": "prohibit",  # an applicable notAllowed beats any allowed
    }
    if terms.title:
        policy["dc:title"] = terms.title
    permissions = [
        _rule(terms, g, i) for i, g in enumerate(terms.grants)
        if g.permission is not Permission.notAllowed
    ]
    prohibitions = [
        _rule(terms, g, i) for i, g in enumerate(terms.grants)
        if g.permission is Permission.notAllowed
    ]
    if permissions:
        policy["permission"] = permissions
    if prohibitions:
        policy["prohibition"] = prohibitions
    return policy
