"""PDQ (Meta): 256-bit perceptual hash with a quality score.

Thresholds from the reference (ThreatExchange pdq/README): distance <= 31 is a match; hashes of
quality <= 49 come from near-flat images and match unrelated flat images, so they are dropped.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pdqhash
from PIL import Image

from registry.fingerprint.base import Hash, SignalType


def _rgb_array(image: Image.Image) -> np.ndarray:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


class Pdq(SignalType):
    name: ClassVar[str] = "pdq"
    bits: ClassVar[int] = 256
    version: ClassVar[int] = 2  # 2: art with transparency hashed on neutral grey (issue 11)
    match_threshold: ClassVar[int] = 31  # PDQ reference: confident match
    quality_threshold: ClassVar[int] = 50  # PDQ reference: quality <= 49 is too flat
    work_size: ClassVar[int] = 256
    hash_windows: ClassVar[bool] = True
    # Crops of flipped or turned copies only meet the catalog windows through the query's variants.
    query_dihedral: ClassVar[bool] = True
    gates_query: ClassVar[bool] = True

    @classmethod
    def compute(cls, image: Image.Image) -> Hash:
        bits, quality = pdqhash.compute(_rgb_array(image))
        return Hash(_pack(bits), int(quality))

    @classmethod
    def compute_dihedral(cls, image: Image.Image) -> list[Hash]:
        # One DCT for all 8 variants: as fast as one hash.
        hashes, quality = pdqhash.compute_dihedral(_rgb_array(image))
        return [Hash(_pack(h), int(quality)) for h in hashes]
