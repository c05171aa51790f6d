"""What is computed for a catalog asset: hashes of many regions, and keypoints.

Per image asset (34 hashes with the two installed signals + one local-feature set):
- every installed signal type hashes the 8 dihedral variants of the whole image (flips,
  90-degree rotations); those with `hash_windows` (PDQ) also hash 3x3 windows at 80% and at 60%
  of each side (crops);
- up to 600 SIFT keypoints (verification) and 400 ORB keypoints of the picture and of its mirror
  (candidates), stored together (stage 2).
Art with transparency (RGBA sprites, portraits, logos) is fingerprinted by what is visible: the
hashes see it composited on a neutral grey (never the colour values hidden under transparent
pixels, which differ from file to file and show nowhere), and its keypoints are taken inside the
alpha mask only (`visible_content`), so the art is found pasted over any background.
A video asset is sampled into frames (1 per second plus scene changes); each frame gets the PDQ
and pHash dihedral hashes with its time code, and up to `MAX_KEYFRAMES` frames get keypoints.

Everything here is a pure function of the media bytes, so it runs in worker processes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from registry.fingerprint import keypoints
from registry.fingerprint.base import DIHEDRAL_NAMES, Hash
from registry.fingerprint.regions import Box, crop, windows
from registry.fingerprint.signals import installed_signal_types
from registry.media.loader import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    has_transparency,
    load_image,
)
from registry.media.video import sample_frames

# Longest side of the picture keypoints are taken from (queries rescale it again).
WORK_SIDE_PX = 1024
# Longest side the hashes work at: PDQ and pHash reduce to 64/32 px anyway, PDQ's cost grows
# with the input (5 ms at 1024 px, about 1 ms at 512), and the 60% windows of a 512 px image
# are still 300 px. Catalog JPEGs decode in draft mode down to about CATALOG_DECODE_PX.
HASH_SIDE_PX = 512
CATALOG_DECODE_PX = 512
DRAFT_SIZE = (CATALOG_DECODE_PX, CATALOG_DECODE_PX)
MAX_KEYFRAMES = 12
MAX_VIDEO_FRAMES = 600
# An asset is weakly protectable when it has no usable PDQ hash and few keypoints.
WEAK_KEYPOINTS = 50
# What transparent pixels are composited on (hashes, keypoints): a neutral mid grey.
NEUTRAL_RGB = (128, 128, 128)
# Alpha at or above this is visible content (the keypoint mask).
VISIBLE_ALPHA = 128


@dataclass(frozen=True)
class HashRecord:
    signal: str
    version: int
    # "full/<dihedral>" ("art/<dihedral>" for art with transparency), "w80/<0-8>", "w60/<0-8>"
    region: str
    bits: bytes
    quality: int
    box: Box | None = None  # in the asset's pixels (of the frame, for video)
    time_s: float | None = None


@dataclass(frozen=True)
class KeypointRecord:
    version: int
    keys: keypoints.LocalFeatures
    time_s: float | None = None


@dataclass(frozen=True)
class AssetFeatures:
    hashes: list[HashRecord] = field(default_factory=list)
    keypoint_sets: list[KeypointRecord] = field(default_factory=list)

    @property
    def weak_reason(self) -> str | None:
        """Why nothing robust could be extracted (`weak_reason`), or None."""
        gates = [s for s in installed_signal_types() if s.gates_query]
        best: int | None = None
        usable = False
        for h in self.hashes:
            for gate in gates:
                if h.signal == gate.name:
                    best = max(best or 0, h.quality)
                    usable |= h.quality >= gate.quality_threshold
        most_keys = max((len(k.keys.sift) for k in self.keypoint_sets), default=0)
        art = any(h.region.startswith("art/") for h in self.hashes)
        return weak_reason(usable=usable, best_quality=best, art=art, keypoints=most_keys)

    @property
    def weak(self) -> bool:
        return self.weak_reason is not None


def weak_reason(*, usable: bool, best_quality: int | None, art: bool, keypoints: int
                ) -> str | None:
    """The one rule for weak assets (`protection.weak_reasons` reads the same facts from the
    database): flat when no gating hash reaches its quality gate and it has few keypoints;
    bare art when it is art with transparency and few keypoints inside its visible content."""
    if keypoints >= WEAK_KEYPOINTS:
        return None
    if not usable:
        gate = " / ".join(f"{s.name} quality {s.quality_threshold}"
                          for s in installed_signal_types() if s.gates_query)
        shown = "none" if best_quality is None else str(best_quality)
        return (f"flat: best hash quality {shown} (gate: {gate}) and {keypoints} keypoints "
                f"(< {WEAK_KEYPOINTS})")
    if art:
        return (f"bare art: {keypoints} keypoints inside its visible content "
                f"(< {WEAK_KEYPOINTS}); its hashes find it only on a plain background")
    return None


def has_alpha(image: Image.Image) -> bool:
    """True when the picture carries transparency (an alpha channel or a transparent colour):
    the loader's own test (`keep_alpha` keeps exactly these)."""
    return has_transparency(image)


def visible_content(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB picture, mask): a picture with transparency composited on `NEUTRAL_RGB`, and its
    visible pixels (mode "L", 255 where alpha >= `VISIBLE_ALPHA`); other pictures as RGB with
    no mask. A fully opaque alpha channel counts as none."""
    if not has_alpha(image):
        return (image if image.mode == "RGB" else image.convert("RGB")), None
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    lowest, _highest = alpha.getextrema()
    if isinstance(lowest, int | float) and lowest >= 255:
        return rgba.convert("RGB"), None
    canvas = Image.new("RGB", rgba.size, NEUTRAL_RGB)
    canvas.paste(rgba, (0, 0), alpha)
    return canvas, alpha.point(lambda v: 255 if v >= VISIBLE_ALPHA else 0)


def decode_visible(data: bytes, *, name: str, max_bytes: int = DEFAULT_MAX_BYTES,
                   max_pixels: int = DEFAULT_MAX_PIXELS,
                   draft_size: tuple[int, int] | None = None
                   ) -> tuple[Image.Image, Image.Image | None]:
    """Decode once through the media loader (validation, limits, EXIF orientation) and, for a
    picture with transparency, keep it: `visible_content` of the decoded picture. Raises the
    media errors."""
    image = load_image(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels,
                       draft_size=draft_size, keep_alpha=True)
    if image.mode != "RGBA":  # the loader keeps alpha only for pictures with transparency
        return image, None
    return visible_content(image)


def work_image(image: Image.Image, side: int = WORK_SIDE_PX) -> Image.Image:
    """The image scaled down to at most `side` px (never up), RGB (transparency composited on
    `NEUTRAL_RGB`)."""
    rgb = image if image.mode == "RGB" else visible_content(image)[0]
    if max(rgb.size) > side:
        rgb = rgb.copy()
        rgb.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def draft_request(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The draft size that keeps the longest side at >= `longest` px (Pillow's draft mode keeps
    both sides at or above the request)."""
    ratio = min(1.0, longest / max(size))
    return (max(1, math.ceil(size[0] * ratio)), max(1, math.ceil(size[1] * ratio)))


def _dihedral(image: Image.Image, time_s: float | None, *, art: bool = False
              ) -> list[HashRecord]:
    """The whole picture's dihedral hashes, labelled "full/<variant>", or "art/<variant>" for
    art with transparency (its hashes saw it on neutral grey: a copy pasted over a new
    background hashes differently, so the matcher judges such art by geometry alone)."""
    box = (0, 0, image.width, image.height)
    label = "art" if art else "full"
    out = []
    for signal in installed_signal_types():
        out += [HashRecord(signal.name, signal.version, f"{label}/{name}", h.bits, h.quality,
                           box, time_s)
                for name, h in zip(DIHEDRAL_NAMES, signal.compute_dihedral(image), strict=True)]
    return out


def _scaled_local(image: Image.Image, width: int, height: int,
                  mask: Image.Image | None = None) -> keypoints.LocalFeatures:
    """Stage 2's features of `image`, coordinates scaled to a `width` x `height` original."""
    found = keypoints.local_features(image, mask)
    factor = np.array([width / image.width, height / image.height], np.float32)

    def scaled(keys: keypoints.KeypointSet) -> keypoints.KeypointSet:
        return keypoints.KeypointSet(width, height, keys.xy * factor, keys.descriptors)

    return keypoints.LocalFeatures(scaled(found.sift), scaled(found.orb),
                                   scaled(found.orb_mirror))


def image_features(image: Image.Image, *, scale_to: tuple[int, int] | None = None,
                   mask: Image.Image | None = None) -> AssetFeatures:
    """Features of a still image. `scale_to`: the original size, when `image` was reduced
    (boxes and keypoints are reported in original pixels). A picture with transparency is
    taken by its visible content (`visible_content`); `mask`: that content's mask, when the
    caller composited the picture already."""
    if mask is None:
        image, mask = visible_content(image)
    img = work_image(image)
    small = work_image(img, HASH_SIDE_PX)
    width, height = scale_to or image.size
    records = _dihedral(small, None, art=mask is not None)
    records = [HashRecord(r.signal, r.version, r.region, r.bits, r.quality,
                          (0, 0, width, height)) for r in records]
    sx, sy = width / small.width, height / small.height
    windowed = [s for s in installed_signal_types() if s.hash_windows]
    for label, box in windows(small.width, small.height) if windowed else []:
        part = crop(small, box)
        x, y, w, hh = box
        scaled = (round(x * sx), round(y * sy), round(w * sx), round(hh * sy))
        for signal in windowed:
            h: Hash = signal.compute(part)
            records.append(HashRecord(signal.name, signal.version, label, h.bits, h.quality,
                                      scaled))
    keys = _scaled_local(img, width, height, mask)
    return AssetFeatures(records, [KeypointRecord(keypoints.KEYPOINT_VERSION, keys)])


def _pick_keyframes(times: Sequence[float], limit: int) -> set[int]:
    if len(times) <= limit:
        return set(range(len(times)))
    step = (len(times) - 1) / (limit - 1)
    return {round(i * step) for i in range(limit)}


def video_features(data: bytes, *, name: str) -> AssetFeatures:
    frames = []
    for frame in sample_frames(io.BytesIO(data), name=name):
        frames.append(frame)
        if len(frames) >= MAX_VIDEO_FRAMES:
            break
    records: list[HashRecord] = []
    keysets: list[KeypointRecord] = []
    chosen = _pick_keyframes([f.time_s for f in frames], MAX_KEYFRAMES)
    for i, frame in enumerate(frames):
        img = work_image(frame.image)
        for r in _dihedral(work_image(img, HASH_SIDE_PX), frame.time_s):
            records.append(HashRecord(r.signal, r.version, r.region, r.bits, r.quality,
                                      (0, 0, frame.image.width, frame.image.height),
                                      frame.time_s))
        if i in chosen:
            keys = _scaled_local(img, frame.image.width, frame.image.height)
            keysets.append(KeypointRecord(keypoints.KEYPOINT_VERSION, keys, frame.time_s))
    return AssetFeatures(records, keysets)


def media_features(data: bytes, *, name: str, kind: str,
                   max_bytes: int = DEFAULT_MAX_BYTES,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> AssetFeatures:
    """Features of an asset's original bytes (image or video). Raises the media errors."""
    if kind == "video":
        return video_features(data, name=name)
    try:  # header only, for the draft size; load_image below does the real validation
        with Image.open(io.BytesIO(data)) as header:
            original = header.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        original = (CATALOG_DECODE_PX, CATALOG_DECODE_PX)
    image, mask = decode_visible(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels,
                                 draft_size=draft_request(original, CATALOG_DECODE_PX))
    # EXIF rotation may have swapped the sides.
    if (image.width - image.height) * (original[0] - original[1]) < 0:
        original = (original[1], original[0])
    return image_features(image, scale_to=original, mask=mask)


def path_features(path: str, kind: str) -> AssetFeatures:
    """For worker processes: features of a file on disk."""
    with open(path, "rb") as fh:
        data = fh.read()
    # The catalog validated the file at import: only the byte limit is relaxed here.
    return media_features(data, name=path, kind=kind, max_bytes=max(len(data), 1))
