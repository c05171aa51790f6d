"""Soft bindings: what ties a manifest to the content when the manifest itself is gone.

C2PA's `c2pa.soft-binding` assertion names an algorithm from the C2PA soft-binding algorithm
list and its value for the content. PDQ and pHash are not on that list; ISCC (`io.iscc.v0`,
ISO 24138) is, so what we sign carries the ISCC Content-Code Image of the output:

- the image is normalised as iscc-core's `code_content_image` prescribes (EXIF orientation, which
  the safe loader applies; uniform borders trimmed; grey; 32x32 bicubic; 1,024 uint8 values),
  then `iscc_lib.gen_image_code_v0` (ISO 24138 Content-Code Image v0, 64 bits) gives the code;
- the assertion's block value is the ISCC unit (header + digest, the base32 text decoded) in
  base64, the form the Soft Binding Resolution API's `value` takes. `iscc_code_from_value`
  reads it back, and also takes the ISCC text (`ISCC:EEA...`).

Our own fingerprints of the signed output (PDQ of the whole picture and its 80% windows) are
not a registered algorithm: they stay in the manifest repository under our namespace
(`com.clearhouse.pdq`), never in the manifest under a registered name.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import iscc_lib
from PIL import Image, ImageChops

from registry.fingerprint import get_signal_type
from registry.provenance.errors import InvalidSoftBinding

SOFT_BINDING_LABEL = "c2pa.soft-binding"
ISCC_ALG = "io.iscc.v0"
ISCC_IMAGE_BITS = 64
ISCC_PREFIX = "ISCC:"
# Our fingerprints: names in our own namespace (not on the C2PA list, never written as if).
PDQ_ALG = "com.clearhouse.pdq"
# Windows of the signed output that are hashed too, so that a crop of it still meets one:
# the centre and the four corners at 80% of each side.
WINDOW_FRACTION = 0.8
HASH_SIDE_PX = 512


@dataclass(frozen=True)
class OutputFingerprint:
    """One fingerprint of a signed output: algorithm, region label, packed bits, quality."""

    alg: str
    region: str
    value: bytes
    quality: int = 100


def iscc_pixels(image: Image.Image) -> list[int]:
    """The 1,024 grey values iscc-core's image code expects (32x32, row by row)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    box = _content_box(rgb)
    if box is not None:
        rgb = rgb.crop(box)
    grey = rgb.convert("L").resize((32, 32), Image.Resampling.BICUBIC)
    return list(grey.tobytes())


def _content_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box inside uniform borders (the colour of the top-left pixel), or None if none."""
    background = Image.new(image.mode, image.size, image.getpixel((0, 0)))
    diff = ImageChops.difference(image, background).convert("L").point(
        lambda v: 255 if v > 10 else 0)
    box = diff.getbbox()
    if box is None or box == (0, 0, image.width, image.height):
        return None
    return box


def iscc_image_code(image: Image.Image) -> str:
    """The ISCC Content-Code Image (v0, 64 bits) of a picture, as `ISCC:...` text."""
    result = iscc_lib.gen_image_code_v0(iscc_pixels(image), ISCC_IMAGE_BITS)
    return str(result["iscc"])


def iscc_code_bytes(code: str) -> bytes:
    """The ISCC unit (header + digest) of an `ISCC:...` text code. Raises InvalidSoftBinding."""
    text = code.strip().removeprefix(ISCC_PREFIX)
    if not text or not text.isalnum():
        raise InvalidSoftBinding(f"not an ISCC code: {code!r}")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error as exc:
        raise InvalidSoftBinding(f"not an ISCC code: {code!r} ({exc})") from exc


def iscc_code_from_bytes(unit: bytes) -> str:
    return ISCC_PREFIX + base64.b32encode(unit).decode("ascii").rstrip("=")


def iscc_value(code: str) -> str:
    """The soft-binding value of an ISCC code: its unit bytes in base64."""
    return base64.b64encode(iscc_code_bytes(code)).decode("ascii")


def iscc_code_from_value(value: str) -> str:
    """An ISCC code from a soft-binding value (base64 of the unit) or from ISCC text.

    Raises InvalidSoftBinding when it is neither, or not an ISCC Content-Code Image.
    """
    value = value.strip()
    if value.upper().startswith(ISCC_PREFIX):
        unit = iscc_code_bytes(value)
    else:
        try:
            unit = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise InvalidSoftBinding(f"value: not base64 ({exc})") from exc
    # Header byte 1: main type CONTENT (0010) and subtype IMAGE (0001): 0x21; then version 0.
    if len(unit) != 2 + ISCC_IMAGE_BITS // 8 or unit[0] != 0x21 or unit[1] >> 4 != 0:
        raise InvalidSoftBinding("value: not a 64-bit ISCC Content-Code Image (io.iscc.v0, image)")
    return iscc_code_from_bytes(unit)


def soft_binding_assertion(code: str) -> dict[str, object]:
    """The `c2pa.soft-binding` assertion carrying this ISCC image code for the whole image."""
    return {
        "label": SOFT_BINDING_LABEL,
        "data": {
            "alg": ISCC_ALG,
            "name": "ISCC Content-Code Image (ISO 24138)",
            "blocks": [{"scope": {}, "value": iscc_value(code)}],
        },
    }


def _windows(width: int, height: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    w, h = round(width * WINDOW_FRACTION), round(height * WINDOW_FRACTION)
    xs, ys = (0, (width - w) // 2, width - w), (0, (height - h) // 2, height - h)
    spots = {"w80/centre": (xs[1], ys[1]), "w80/top-left": (xs[0], ys[0]),
             "w80/top-right": (xs[2], ys[0]), "w80/bottom-left": (xs[0], ys[2]),
             "w80/bottom-right": (xs[2], ys[2])}
    return [(name, (x, y, x + w, y + h)) for name, (x, y) in spots.items()]


def hash_image(image: Image.Image) -> Image.Image:
    """The picture at the size our hashes work at (at most 512 px on the longest side)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if max(rgb.size) > HASH_SIDE_PX:
        rgb = rgb.copy()
        rgb.thumbnail((HASH_SIDE_PX, HASH_SIDE_PX), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def output_fingerprints(image: Image.Image) -> list[OutputFingerprint]:
    """Our fingerprints of a signed output: PDQ of the whole picture and of 5 windows at 80%.

    Hashes below PDQ's quality threshold are kept (they say the picture is flat) but never
    matched on.
    """
    pdq = get_signal_type("pdq")
    small = hash_image(image)
    out = [OutputFingerprint(PDQ_ALG, "full", (h := pdq.compute(small)).bits, h.quality)]
    for region, box in _windows(small.width, small.height):
        w = pdq.compute(small.crop(box))
        out.append(OutputFingerprint(PDQ_ALG, region, w.bits, w.quality))
    return out


def query_fingerprints(image: Image.Image) -> list[OutputFingerprint]:
    """The PDQ hashes a query is looked up with: the whole picture, and inside its borders."""
    pdq = get_signal_type("pdq")
    small = hash_image(image)
    out = [OutputFingerprint(PDQ_ALG, "full", (h := pdq.compute(small)).bits, h.quality)]
    box = _content_box(small)
    if box is not None and (box[2] - box[0]) * (box[3] - box[1]) >= 0.25 * small.width * \
            small.height:
        t = pdq.compute(small.crop(box))
        out.append(OutputFingerprint(PDQ_ALG, "trim", t.bits, t.quality))
    return out
