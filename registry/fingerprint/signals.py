"""The installed signal types, registered in one explicit tuple."""

from __future__ import annotations

from registry.errors import UnknownSignal
from registry.fingerprint.base import SignalType
from registry.fingerprint.pdq import Pdq
from registry.fingerprint.phash import PHash

SIGNAL_TYPES: tuple[type[SignalType], ...] = (Pdq, PHash)
_BY_NAME: dict[str, type[SignalType]] = {s.name: s for s in SIGNAL_TYPES}
assert len(_BY_NAME) == len(SIGNAL_TYPES), "signal names must be unique"


def installed_signal_types() -> tuple[type[SignalType], ...]:
    return SIGNAL_TYPES


def get_signal_type(name: str) -> type[SignalType]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownSignal(
            f"unknown signal {name!r} (installed: {', '.join(_BY_NAME)})"
        ) from None
