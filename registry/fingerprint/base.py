"""The signal-type interface: one way of turning a picture into comparable bits.

A signal type has a stored `name` (never derived from the class name), a bit length, a `version`
(bumped whenever its bits change, so stale stored hashes are recomputed), a default match
threshold in bits, and `compute(image) -> Hash | None`. Adding a signal is one new module plus one
line in `signals.SIGNAL_TYPES`; the index, the tables and the matcher handle any bit length that
is a multiple of 8.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from registry.errors import InvalidFingerprint


@dataclass(frozen=True)
class Hash:
    """Packed bits (most significant bit first) and the signal's quality score (0-100)."""

    bits: bytes
    quality: int = 100

    @property
    def hex(self) -> str:
        return self.bits.hex()


@dataclass(frozen=True)
class Comparison:
    matched: bool
    distance: int

    @classmethod
    def from_distance(cls, distance: int, threshold: int) -> Comparison:
        return cls(distance <= threshold, distance)


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two equally long packed hashes."""
    if len(a) != len(b):
        raise InvalidFingerprint(f"cannot compare hashes of {len(a)} and {len(b)} bytes")
    return int(np.unpackbits(np.bitwise_xor(np.frombuffer(a, np.uint8),
                                            np.frombuffer(b, np.uint8))).sum())


class SignalType(abc.ABC):
    """One kind of perceptual hash over a decoded RGB image."""

    name: ClassVar[str]
    bits: ClassVar[int]
    version: ClassVar[int]
    # Largest Hamming distance that counts as a match on its own.
    match_threshold: ClassVar[int]
    # Hashes below this quality are too flat to match on (never indexed, never queried).
    quality_threshold: ClassVar[int] = 0
    # Pixel size the signal works at: JPEGs may be decoded in draft mode down to about this.
    work_size: ClassVar[int] = 256
    # Catalog side: also hash the 3x3 windows at 80% and 60% (crops), not only the whole image.
    hash_windows: ClassVar[bool] = False
    # Query side: probe with the 8 dihedral variants (True) or the picture as it is (False; the
    # catalog's dihedral hashes of the whole image still catch flips and quarter turns).
    query_dihedral: ClassVar[bool] = False
    # A query picture this signal finds too flat (quality below its gate) is not probed by any
    # signal: a flat picture says nothing, whatever the hash.
    gates_query: ClassVar[bool] = False
    # A hit within the threshold is a match on its own (True), or only names a candidate that
    # stage 2 must verify geometrically (False: the signal is too coarse to decide alone).
    decisive: ClassVar[bool] = True

    @classmethod
    @abc.abstractmethod
    def compute(cls, image: Image.Image) -> Hash:
        """Hash an RGB image."""

    @classmethod
    def compute_dihedral(cls, image: Image.Image) -> list[Hash]:
        """The 8 hashes of the image's rotations and flips, in `DIHEDRAL_NAMES` order."""
        return [cls.compute(image.transpose(t) if t is not None else image)
                for t in DIHEDRAL_TRANSPOSES]

    @classmethod
    def byte_length(cls) -> int:
        return cls.bits // 8

    @classmethod
    def usable(cls, value: Hash) -> bool:
        return value.quality >= cls.quality_threshold

    @classmethod
    def validate(cls, fingerprint: str) -> bytes:
        """Parse a hex string; raise InvalidFingerprint if it is not `bits` long."""
        try:
            raw = bytes.fromhex(fingerprint.strip())
        except ValueError as exc:
            raise InvalidFingerprint(f"{cls.name}: not a hex string") from exc
        if len(raw) != cls.byte_length():
            raise InvalidFingerprint(
                f"{cls.name}: expected {cls.bits} bits, got {len(raw) * 8}"
            )
        return raw

    @classmethod
    def compare(cls, a: bytes, b: bytes, threshold: int | None = None) -> Comparison:
        return Comparison.from_distance(
            hamming(a, b), cls.match_threshold if threshold is None else threshold
        )


# The dihedral group in the order pdqhash.compute_dihedral (and the PDQ reference) uses:
# original, rotate 90/180/270 (counter-clockwise), flip about the x axis (top-bottom), flip about
# the y axis (left-right, a mirror), flip +1 (transpose), flip -1 (transverse).
DIHEDRAL_NAMES = (
    "identity", "rot90", "rot180", "rot270", "flip_v", "flip_h", "transpose", "transverse",
)
DIHEDRAL_TRANSPOSES: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)
