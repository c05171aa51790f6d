"""Safe loading of untrusted media: sniff the real format, enforce limits, decode defensively.

Every file that enters the registry (catalog import, dataset item, match query, file to sign) goes
through here first. The rules:
- the format is sniffed from the bytes, never taken from the file name; only the allow-list passes;
- the byte limit and the pixel limit are checked before any pixel is decoded (decompression bombs);
- truncated or corrupt data fails with the file name and the decoder's reason;
- EXIF orientation is applied, so that hashes see the picture as people do.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from registry.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our own pixel check decides; Pillow's hard error (twice its 89.5 MP warning) is a second line.
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

# Pillow format name -> IANA media type. GIF: the first frame is the image.
IMAGE_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
}
# Container magic for the video formats PyAV reads for us.
VIDEO_MEDIA_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "matroska": "video/x-matroska",
}

ISOBMFF_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")

# Modes that carry an alpha channel; P, L and RGB pictures may name a transparent colour instead.
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

MediaKind = Literal["image", "video"]
Source = Path | str | bytes


@dataclass(frozen=True)
class MediaInfo:
    kind: MediaKind
    media_type: str
    width: int
    height: int
    duration_s: float | None = None


@dataclass(frozen=True)
class Probed:
    """What `probe` found for the bytes of this sha256 under these limits: a bulk import's
    worker process validated the file (a full decode), so the import's own transaction need not
    decode it again (`register_asset(probed=)`)."""

    sha256: str
    info: MediaInfo
    max_bytes: int
    max_pixels: int

    def vouches_for(self, sha256: str, *, max_bytes: int, max_pixels: int) -> bool:
        """True for the same bytes, checked under limits no looser than these."""
        return (self.sha256 == sha256 and self.max_bytes <= max_bytes
                and self.max_pixels <= max_pixels)


def _name(source: Source, name: str | None) -> str:
    if name:
        return name
    return "<bytes>" if isinstance(source, bytes) else str(source)


def _open_bytes(source: Source, name: str, max_bytes: int) -> BinaryIO:
    if isinstance(source, bytes):
        size = len(source)
        stream: BinaryIO = io.BytesIO(source)
    else:
        try:
            size = os.stat(source).st_size
            stream = open(source, "rb")  # noqa: SIM115 - returned to the caller, closed there
        except OSError as exc:
            raise CorruptMedia(f"{name}: cannot read file ({exc.strerror})") from exc
    if size == 0:
        stream.close()
        raise CorruptMedia(f"{name}: empty file (0 bytes)")
    if size > max_bytes:
        stream.close()
        raise MediaTooLarge(
            f"{name}: {size} bytes is over the limit of {max_bytes} bytes",
            detail={"size": size, "limit": max_bytes},
        )
    return stream


def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"{name}: invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise MediaTooLarge(
            f"{name}: {width}x{height} = {width * height} pixels is over the limit of "
            f"{max_pixels} (possible decompression bomb)",
            detail={"width": width, "height": height, "limit": max_pixels},
        )


def _sniff_video(stream: BinaryIO) -> str | None:
    head = stream.read(64)
    stream.seek(0)
    if head[4:8] == b"ftyp":
        if head[8:12] in ISOBMFF_IMAGE_BRANDS:
            return None  # AVIF/HEIF stills share the MP4 box format
        return "mov" if head[8:10] == b"qt" else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head else "matroska"
    return None


def _open_image(stream: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own limit (_check_pixels, 100 MP by default) decides, not Pillow's warning at
            # 89.5 MP; Pillow's DecompressionBombError (at twice that) stays a second line.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLarge(f"{name}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(
            f"{name}: not a recognised image format (allowed: {', '.join(IMAGE_FORMATS)})"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(f"{name}: cannot read image header ({exc})") from exc
    if image.format not in IMAGE_FORMATS:
        raise UnsupportedMedia(
            f"{name}: format {image.format} is not allowed (allowed: {', '.join(IMAGE_FORMATS)})"
        )
    _check_pixels(name, image.width, image.height, max_pixels)
    return image


def probe(
    source: Source,
    *,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> MediaInfo:
    """Identify and validate media without keeping it: a full decode proves the file is whole.

    Raises CorruptMedia, MediaTooLarge or UnsupportedMedia with the file name and the reason.
    """
    label = _name(source, name)
    with _open_bytes(source, label, max_bytes) as stream:
        video = _sniff_video(stream)
        if video is not None:
            from registry.media.video import probe_video

            return probe_video(stream, label, video, max_pixels=max_pixels)
        image = _decode(_open_image(stream, label, max_pixels), label)
        fmt = image.format or ""
        width, height = image.size
        image.close()
    return MediaInfo("image", IMAGE_FORMATS.get(fmt, "application/octet-stream"), width, height)


def _decode(image: Image.Image, name: str) -> Image.Image:
    try:
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptMedia(f"{name}: corrupt or truncated image ({exc})") from exc
    return image


def has_transparency(image: Image.Image) -> bool:
    """True when the picture carries transparency: an alpha channel (even a fully opaque one),
    or a transparent colour (PNG tRNS, GIF transparent index) of a P, L or RGB picture."""
    return image.mode in ALPHA_MODES or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info)


def load_image(
    source: Source,
    *,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
    keep_alpha: bool = False,
) -> Image.Image:
    """Decode an image to RGB with EXIF orientation applied.

    `draft_size`: for JPEG, let the decoder scale down by 1/2..1/8 while decoding so that the result
    is still at least this size (Pillow's draft mode); hashes that work on 64-512 px images lose
    nothing and decoding gets several times faster. Other formats ignore it.
    `keep_alpha`: a picture with transparency (`has_transparency`) comes back as RGBA instead
    (a transparent colour becomes alpha 0), so that callers need not decode it a second time;
    other pictures still come back as RGB.
    """
    label = _name(source, name)
    with _open_bytes(source, label, max_bytes) as stream:
        if _sniff_video(stream) is not None:
            raise UnsupportedMedia(f"{label}: is a video; sample its frames instead")
        image = _open_image(stream, label, max_pixels)
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", draft_size)
        image = _decode(image, label)
        try:
            oriented = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError):  # broken EXIF: keep the pixels as stored
            oriented = image
        mode = "RGBA" if keep_alpha and has_transparency(oriented) else "RGB"
        decoded = oriented.convert(mode) if oriented.mode != mode else oriented.copy()
        image.close()
    return decoded
