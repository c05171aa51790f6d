"""How well each catalog asset is protected: weak assets with the reason, stale fingerprints.

An asset is **weak** when no method can find it again reliably, for a reason read from its stored
fingerprints (so it holds for assets imported by any door and after any rebuild):
- flat: no hash of a gating signal (PDQ) reaches its quality gate, and fewer than
  `WEAK_KEYPOINTS` keypoints: a near-empty or near-uniform picture (the PDQ quality gate exists
  because such pictures match unrelated flat pictures);
- bare art: art with transparency with fewer than `WEAK_KEYPOINTS` keypoints inside its visible
  content (a flat silhouette, a tiny icon): its hashes saw it on a neutral grey, so they find it
  only on a plain background, and nothing finds it pasted over a picture.
Assets whose stored fingerprints predate the current signal or keypoint versions are **stale**
(the stages ignore those rows): `clearhouse fingerprint rebuild` recomputes them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from registry.fingerprint.features import weak_reason
from registry.fingerprint.keypoints import KEYPOINT_VERSION
from registry.fingerprint.models import Fingerprint, KeypointSet
from registry.fingerprint.signals import installed_signal_types

__all__ = ["stale_assets", "weak_reasons"]


def weak_reasons(session: Session, asset_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Weak assets (of `asset_ids`, or of the whole catalog) -> why, by asset id."""
    wanted = None if asset_ids is None else sorted(set(asset_ids))
    if wanted == []:
        return {}
    gates = {s.name: s for s in installed_signal_types() if s.gates_query}

    quality: dict[int, int] = {}
    usable: set[int] = set()
    art: set[int] = set()
    some_hashes = [] if wanted is None else [Fingerprint.asset_id.in_(wanted)]
    some_keys = [] if wanted is None else [KeypointSet.asset_id.in_(wanted)]
    for asset_id, signal, best, art_rows in session.execute(
            select(Fingerprint.asset_id, Fingerprint.signal, func.max(Fingerprint.quality),
                   func.max(case((Fingerprint.region.like("art/%"), 1), else_=0)))
            .where(Fingerprint.signal.in_(list(gates)),
                   Fingerprint.version.in_([s.version for s in gates.values()]), *some_hashes)
            .group_by(Fingerprint.asset_id, Fingerprint.signal)):
        quality[int(asset_id)] = max(quality.get(int(asset_id), 0), int(best))
        if best >= gates[signal].quality_threshold:
            usable.add(int(asset_id))
        if art_rows:
            art.add(int(asset_id))
    keys = {int(a): int(n or 0) for a, n in session.execute(
        select(KeypointSet.asset_id, func.max(KeypointSet.count))
        .where(KeypointSet.version == KEYPOINT_VERSION, *some_keys)
        .group_by(KeypointSet.asset_id))}
    reasons: dict[int, str] = {}
    for asset_id in sorted(set(quality) | set(keys)):
        why = weak_reason(usable=asset_id in usable, best_quality=quality.get(asset_id),
                          art=asset_id in art, keypoints=keys.get(asset_id, 0))
        if why is not None:
            reasons[asset_id] = why
    return reasons


def stale_assets(session: Session) -> list[int]:
    """Assets with fingerprints of an older signal or keypoint version (the stages ignore
    those rows until `clearhouse fingerprint rebuild` recomputes them)."""
    current = [(Fingerprint.signal == s.name) & (Fingerprint.version == s.version)
               for s in installed_signal_types()]
    old_hashes = select(Fingerprint.asset_id).where(~or_(*current))
    old_keys = select(KeypointSet.asset_id).where(KeypointSet.version != KEYPOINT_VERSION)
    return sorted({int(a) for a in session.scalars(old_hashes.union(old_keys))})
