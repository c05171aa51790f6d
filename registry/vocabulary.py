"""The words every area shares, defined once: the uses (C2PA / CAWG training-and-data-mining
vocabulary), the permissions a use can have, and "the most restrictive wins".

Policy (licence grants), opt-out reading (IPTC PLUS, TDMRep, C2PA/CAWG in items), provenance
(the `cawg.training-mining` assertion we write and read) and clearance all import these; none
defines its own.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Use(enum.StrEnum):
    """The C2PA / CAWG training-and-data-mining uses."""

    ai_training = "ai_training"
    ai_generative_training = "ai_generative_training"
    ai_inference = "ai_inference"
    data_mining = "data_mining"


USES: tuple[str, ...] = tuple(u.value for u in Use)


class Permission(enum.StrEnum):
    """What a grant, a file's signal or a manifest entry says of one use (CAWG spelling)."""

    allowed = "allowed"
    notAllowed = "notAllowed"  # the vocabulary's own spelling
    constrained = "constrained"


# Higher is more restrictive.
RESTRICTIVENESS: dict[str, int] = {Permission.allowed: 0, Permission.constrained: 1,
                                   Permission.notAllowed: 2}


def restrictiveness(permission: str) -> int:
    """How restrictive a permission is; an unknown value counts as `constrained` (a person must
    read it)."""
    return RESTRICTIVENESS.get(permission, RESTRICTIVENESS[Permission.constrained])


def most_restrictive(permissions: Iterable[str]) -> Permission | None:
    """The most restrictive of several permissions (notAllowed > constrained > allowed); None for
    none. Unknown values count as constrained."""
    found = [str(p) for p in permissions]
    if not found:
        return None
    worst = max(found, key=restrictiveness)
    return Permission(worst) if worst in RESTRICTIVENESS else Permission.constrained
