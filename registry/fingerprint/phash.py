"""pHash via imagehash: 64-bit DCT hash of a 32x32 grey thumbnail.

Only 64 bits, so its threshold is strict (6 bits, about 9%); it has no quality score of its own,
so the matcher only uses it where PDQ says the picture has enough structure.
"""

from __future__ import annotations

from typing import ClassVar

import imagehash
import numpy as np
from PIL import Image

from registry.fingerprint.base import DIHEDRAL_TRANSPOSES, Hash, SignalType

# imagehash.phash: grey, 32x32 LANCZOS thumbnail, DCT, low 8x8 block against its median.
_THUMB = 32


class PHash(SignalType):
    name: ClassVar[str] = "phash"
    bits: ClassVar[int] = 64
    version: ClassVar[int] = 2  # 2: art with transparency hashed on neutral grey (issue 11)
    match_threshold: ClassVar[int] = 6
    quality_threshold: ClassVar[int] = 0
    work_size: ClassVar[int] = 64
    # 64 bits decide nothing alone: on the game-art bench catalog (bench/bench_scale.py) pHash
    # put unrelated castle and wall tiles at distance 0-6 of each other (14 false matches in 40
    # unrelated queries). Its hits are candidates for stage 2's geometric check instead.
    decisive: ClassVar[bool] = False

    @classmethod
    def compute(cls, image: Image.Image) -> Hash:
        value = imagehash.phash(image, hash_size=8)
        return Hash(np.packbits(value.hash.flatten().astype(np.uint8)).tobytes(), 100)

    @classmethod
    def compute_dihedral(cls, image: Image.Image) -> list[Hash]:
        # The 8 variants from one thumbnail (the thumbnail of a turned picture is the turned
        # thumbnail, up to rounding: 0 bits apart for 94% of variants, at most 4 of 64): one
        # resize instead of 8, 21.7 -> 6.0 ms per 512 px asset (measured on a loaded machine).
        thumb = image.convert("L").resize((_THUMB, _THUMB), Image.Resampling.LANCZOS)
        # imagehash resizes a 32x32 picture to 32x32 as a copy: the same code path as compute.
        return [cls.compute(thumb.transpose(t) if t is not None else thumb)
                for t in DIHEDRAL_TRANSPOSES]
