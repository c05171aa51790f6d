"""The transforms of the acceptance table, applied to real photographs.

Each takes an RGB image and returns the query image. Deterministic (no randomness), so recall
figures are reproducible. The overlay uses scikit-image's real logo image plus drawn text.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from tests.photos import skimage_photo

Transform = Callable[[Image.Image], Image.Image]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    out.seek(0)
    return Image.open(out).convert("RGB")


def _resize(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _center_crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = round(image.width * fraction), round(image.height * fraction)
    x, y = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((x, y, x + w, y + h))


def resize_50(image: Image.Image) -> Image.Image:
    return _resize(image, 0.5)


def resize_256(image: Image.Image) -> Image.Image:
    return _resize(image, 256 / max(image.size))


def jpeg_30(image: Image.Image) -> Image.Image:
    return _jpeg(image, 30)


def crop_80(image: Image.Image) -> Image.Image:
    return _center_crop(image, 0.8)


def crop_60(image: Image.Image) -> Image.Image:
    return _center_crop(image, 0.6)


def flip_h(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def rotate_90(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.ROTATE_90)


def rotate_5(image: Image.Image) -> Image.Image:
    return image.rotate(5, resample=Image.Resampling.BILINEAR, expand=True)


def grayscale(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def brightness_30(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1.3)


def overlay_15(image: Image.Image) -> Image.Image:
    """A logo and a caption band over about 15% of the picture (bottom-right corner)."""
    out = image.convert("RGB").copy()
    w, h = out.size
    logo = Image.open(skimage_photo("logo.png")).convert("RGBA")
    side = round((0.10 * w * h) ** 0.5)
    logo = logo.resize((side, side), Image.Resampling.LANCZOS)
    out.paste(logo, (w - side - w // 40, h - side - h // 40), logo)
    draw = ImageDraw.Draw(out)
    band_h = max(8, round(0.05 * h))
    draw.rectangle((0, h // 12, w, h // 12 + band_h), fill=(20, 20, 20))
    draw.text((w // 20, h // 12 + band_h // 4), "SAMPLE  (c) someone else  SAMPLE",
              fill=(255, 255, 0))
    return out


def letterbox(image: Image.Image) -> Image.Image:
    """Black bars making the picture 16:9 wide (or 9:16 tall), at least 12% padding."""
    w, h = image.size
    if w / h < 16 / 9:
        canvas = Image.new("RGB", (max(round(h * 16 / 9), round(w * 1.25)), h), (0, 0, 0))
    else:
        canvas = Image.new("RGB", (w, round(w * 9 / 16 * 1.5)), (0, 0, 0))
    canvas.paste(image.convert("RGB"), ((canvas.width - w) // 2, (canvas.height - h) // 2))
    return canvas


def screenshot(image: Image.Image) -> Image.Image:
    """The picture at 60% of its size inside a browser-like window: title bar, tabs, sidebar
    with text, footer."""
    w, h = image.size
    pic = _resize(image.convert("RGB"), 0.6)
    cw, ch = round(w * 0.6 / 0.62), round(h * 0.6 / 0.6 + h * 0.25)
    canvas = Image.new("RGB", (cw, ch), (246, 246, 248))
    draw = ImageDraw.Draw(canvas)
    bar = round(ch * 0.08)
    draw.rectangle((0, 0, cw, bar), fill=(52, 56, 64))
    for i, colour in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        draw.ellipse((8 + 18 * i, bar // 3, 20 + 18 * i, bar // 3 + 12), fill=colour)
    draw.rectangle((90, bar // 4, max(90, cw - 40), bar - bar // 4), fill=(230, 230, 234))
    draw.text((100, bar // 3), "https://example.org/gallery/item?id=4711", fill=(40, 40, 40))
    side = cw - pic.width - 24
    for row in range(12):
        y = bar + 20 + row * 22
        draw.text((10, y), f"Related item {row + 1}", fill=(60, 60, 90))
        draw.line((10, y + 16, max(12, side - 10), y + 16), fill=(210, 210, 215))
    canvas.paste(pic, (cw - pic.width - 12, bar + 16))
    draw.text((cw - pic.width - 12, bar + 24 + pic.height), "Photo: uploaded by a user",
              fill=(90, 90, 90))
    draw.rectangle((0, ch - round(ch * 0.05), cw, ch), fill=(225, 225, 230))
    return canvas


def combination(image: Image.Image) -> Image.Image:
    """Crop 80% (centre), JPEG quality 50, resize to 60%."""
    return _resize(_jpeg(_center_crop(image, 0.8), 50), 0.6)


TRANSFORMS: dict[str, Transform] = {
    "resize_50": resize_50,
    "resize_256px": resize_256,
    "jpeg_30": jpeg_30,
    "crop_80": crop_80,
    "crop_60": crop_60,
    "flip_h": flip_h,
    "rotate_90": rotate_90,
    "rotate_5": rotate_5,
    "grayscale": grayscale,
    "brightness_30": brightness_30,
    "overlay_15": overlay_15,
    "letterbox": letterbox,
    "screenshot_60": screenshot,
    "combination": combination,
}
# Recall the issue asks for, per transform.
TARGETS: dict[str, float] = {
    "resize_50": 1.0, "resize_256px": 1.0, "jpeg_30": 1.0, "flip_h": 1.0, "rotate_90": 1.0,
    "grayscale": 1.0, "brightness_30": 1.0, "letterbox": 1.0,
    "crop_80": 0.95, "crop_60": 0.95, "overlay_15": 0.95, "screenshot_60": 0.95,
    "rotate_5": 0.90, "combination": 0.90,
}
