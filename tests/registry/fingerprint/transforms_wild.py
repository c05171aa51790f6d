"""How datasets and reposts really reuse pictures (issue 11), as seeded transforms.

Each transform takes the picture (RGB, or RGBA for art with transparency) and a seeded
`numpy.random.Generator` (one per picture and transform: `rng_for`), and returns the query
picture (RGB). Art with transparency is shown flattened on white (as a web page shows it), except
in `paste_over`, where it is pasted over a painting or a photo. Nothing here is random beyond the
generator, so the recall figures are reproducible.

- rrc_35_80 / rrc_35_80_mirror: torchvision's RandomResizedCrop (area 35-80%, aspect 3/4-4/3,
  any position) to 256x256, with or without a horizontal mirror (the standard augmentation);
- rotate_10_20: 10-20 degrees either way, the borders cut (largest inscribed rectangle);
- jitter_blur: brightness, contrast, saturation and hue jitter, then a Gaussian blur;
- collage_tile: the picture as one tile of a 2x2 or 3x3 collage of other pictures;
- meme_jpeg50: caption bars above and below with text, JPEG quality 50;
- screen_photo: a photo of a screen: perspective, bezel, blur, sensor noise, JPEG;
- posterize_edges: posterize to 3 bits per channel, then edge enhancement;
- aspect_1_3: one side stretched by 1.3;
- page_20_30: on a web page whose width is 3.3-5x the picture's (the picture's side is 20-30% of
  the page's);
- paste_over (art with transparency only): pasted at 40-85% of the height of a painting or photo.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]
WHITE = (255, 255, 255)


def rng_for(transform: str, picture: str) -> np.random.Generator:
    """The generator for one picture under one transform (stable across runs and machines)."""
    return np.random.default_rng(zlib.crc32(f"{transform}|{picture}".encode()))


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)


def open_picture(path: Path) -> Image.Image:
    """RGBA for pictures with transparency, RGB otherwise."""
    image = Image.open(path)
    image.load()
    return image.convert("RGBA") if has_alpha(image) else image.convert("RGB")


def flatten(image: Image.Image, colour: tuple[int, int, int] = WHITE) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, colour)
    canvas.paste(image, (0, 0), image)
    return canvas


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    out.seek(0)
    return Image.open(out).convert("RGB")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def rrc(image: Image.Image, rng: np.random.Generator, *, mirror: bool = False,
        size: int = 256) -> Image.Image:
    """RandomResizedCrop(scale=(0.35, 0.8), ratio=(3/4, 4/3)) as torchvision draws it."""
    pic = flatten(image)
    w, h = pic.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(0.35, 0.8)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            break
    else:
        cw = ch = min(w, h)
        x, y = (w - cw) // 2, (h - ch) // 2
    out = pic.crop((x, y, x + cw, y + ch)).resize((size, size), Image.Resampling.BILINEAR)
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else out


def rrc_mirror(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return rrc(image, rng, mirror=True)


def rotate_cut(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate 10-20 degrees (either way) and cut to the largest upright inscribed rectangle."""
    pic = flatten(image)
    degrees = float(rng.uniform(10, 20)) * (1 if rng.random() < 0.5 else -1)
    w, h = pic.size
    a = math.radians(abs(degrees))
    # Largest axis-aligned rectangle inside a w x h rectangle rotated by a.
    side_long, side_short = max(w, h), min(w, h)
    if side_short <= 2 * math.sin(a) * math.cos(a) * side_long:
        x = 0.5 * side_short
        wr, hr = x / math.sin(a), x / math.cos(a)
        if w < h:
            wr, hr = hr, wr
    else:
        cos2 = math.cos(a) ** 2 - math.sin(a) ** 2
        wr = (w * math.cos(a) - h * math.sin(a)) / cos2
        hr = (h * math.cos(a) - w * math.sin(a)) / cos2
    turned = pic.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    cw, ch = int(wr) - 2, int(hr) - 2
    x, y = (w - cw) // 2, (h - ch) // 2
    return turned.crop((x, y, x + cw, y + ch))


def jitter_blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """ColorJitter(0.3, 0.3, 0.4, 0.05) then a Gaussian blur of 0.4-0.7% of the longest side."""
    pic = flatten(image)
    pic = ImageEnhance.Brightness(pic).enhance(rng.uniform(0.7, 1.3))
    pic = ImageEnhance.Contrast(pic).enhance(rng.uniform(0.7, 1.3))
    pic = ImageEnhance.Color(pic).enhance(rng.uniform(0.6, 1.4))
    hsv = np.asarray(pic.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(rng.uniform(-0.05, 0.05) * 255)) % 256
    pic = Image.fromarray(hsv, "HSV").convert("RGB")
    return pic.filter(ImageFilter.GaussianBlur(max(pic.size) * rng.uniform(0.004, 0.007)))


def _cover(image: Image.Image, side: int) -> Image.Image:
    """Scaled to cover a side x side square, centre-cropped (what collage makers do)."""
    return ImageOps.fit(flatten(image), (side, side), Image.Resampling.BILINEAR)


def collage(fillers: Sequence[Path]) -> Transform:
    """One tile of a 2x2 or 3x3 collage; the other tiles are `fillers` (not in the catalog)."""
    def make(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        grid = 2 if rng.random() < 0.5 else 3
        tile = int(rng.integers(240, 330))
        gap = 6
        canvas = Image.new("RGB", (grid * tile + (grid + 1) * gap,) * 2, WHITE)
        cells = grid * grid
        target = int(rng.integers(0, cells))
        others = rng.choice(len(fillers), cells - 1, replace=False)
        pictures = [open_picture(fillers[int(i)]) for i in others]
        pictures.insert(target, image)
        for cell, pic in enumerate(pictures):
            row, col = divmod(cell, grid)
            canvas.paste(_cover(pic, tile), (gap + col * (tile + gap), gap + row * (tile + gap)))
        return canvas
    return make


_CAPTIONS = ["WHEN THE DATASET SAYS", "NOBODY:", "ME AT 3 AM", "THIS IS FINE",
             "ONE DOES NOT SIMPLY", "TRAINING DATA BE LIKE", "AND I TOOK THAT PERSONALLY"]


def meme(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Caption bars (14-20% of the height each) above and below, then JPEG quality 50."""
    pic = flatten(image)
    w, h = pic.size
    top, bottom = (round(h * rng.uniform(0.14, 0.20)) for _ in range(2))
    canvas = Image.new("RGB", (w, h + top + bottom), WHITE)
    canvas.paste(pic, (0, top))
    draw = ImageDraw.Draw(canvas)
    font = _font(round(min(top, bottom) * 0.5))
    for y, text in ((top * 0.2, _CAPTIONS[int(rng.integers(len(_CAPTIONS)))]),
                    (h + top + bottom * 0.2, _CAPTIONS[int(rng.integers(len(_CAPTIONS)))])):
        draw.text((w * 0.04, y), text, fill=(0, 0, 0), font=font)
    return _jpeg(canvas, 50)


def screen_photo(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture on a screen, photographed: a dark bezel, the screen's corners moved by up to
    7% of its size (perspective), a blur, a brightness falloff, sensor noise, JPEG 85."""
    pic = np.asarray(flatten(image), dtype=np.float32)
    h, w = pic.shape[:2]
    border = round(0.12 * max(w, h))
    out_w, out_h = w + 2 * border, h + 2 * border
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-0.07, 0.07, (4, 2)) * np.array([w, h], np.float32)
    dst = (src + border + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    bezel = np.full((out_h, out_w, 3), 18, np.float32)
    warped = cv2.warpPerspective(pic, matrix, (out_w, out_h), dst=bezel,
                                 borderMode=cv2.BORDER_TRANSPARENT, flags=cv2.INTER_LINEAR)
    sigma = max(out_w, out_h) * rng.uniform(0.0015, 0.003)
    warped = cv2.GaussianBlur(warped, (0, 0), sigma)
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * out_w, rng.uniform(0.3, 0.7) * out_h
    falloff = 1 - 0.25 * (((xx - cx) / out_w) ** 2 + ((yy - cy) / out_h) ** 2)
    warped = warped * falloff[..., None] * rng.uniform(0.85, 1.1)
    warped = warped + rng.normal(0, rng.uniform(4, 8), warped.shape)
    return _jpeg(Image.fromarray(np.clip(warped, 0, 255).astype(np.uint8)), 85)


def posterize_edges(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pic = ImageOps.posterize(flatten(image), 3)
    return pic.filter(ImageFilter.EDGE_ENHANCE_MORE)


def aspect(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One side (width or height, drawn) stretched by 1.3."""
    pic = flatten(image)
    w, h = pic.size
    size = (round(w * 1.3), h) if rng.random() < 0.5 else (w, round(h * 1.3))
    return pic.resize(size, Image.Resampling.BILINEAR)


def page(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A web page (header, columns of text, a sidebar) 1280-1600 px wide with the picture at
    20-30% of the page's width, somewhere in its content column."""
    pic = flatten(image)
    page_w = int(rng.integers(1280, 1601))
    pic_w = round(page_w * rng.uniform(0.20, 0.30))
    pic = pic.resize((pic_w, max(1, round(pic.height * pic_w / pic.width))),
                     Image.Resampling.LANCZOS)
    page_h = max(round(page_w * 0.7), pic.height + 260)
    canvas = Image.new("RGB", (page_w, page_h), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, page_w, 64), fill=(34, 48, 74))
    draw.text((24, 18), "Fan Art Weekly - gallery", fill=WHITE, font=_font(24))
    sidebar = round(page_w * 0.22)
    draw.rectangle((page_w - sidebar, 64, page_w, page_h), fill=(236, 238, 242))
    font = _font(15)
    for row, y in enumerate(range(96, page_h - 20, 24)):
        draw.text((page_w - sidebar + 16, y), f"Trending #{row + 1}: community post",
                  fill=(70, 70, 110), font=font)
    x0 = 32 + int(rng.integers(0, max(1, page_w - sidebar - pic.width - 64)))
    y0 = 96 + int(rng.integers(0, max(1, page_h - pic.height - 140)))
    for y in range(96, page_h - 20, 22):
        if y + 16 < y0 - 8 or y > y0 + pic.height + 8:
            draw.text((32, y), "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
                      "eiusmod tempor incididunt ut labore", fill=(40, 40, 40), font=font)
    canvas.paste(pic, (x0, y0))
    draw.text((x0, y0 + pic.height + 6), "Posted by a user - 3 comments", fill=(110, 110, 110),
              font=font)
    return canvas


def paste_background(backgrounds: Sequence[Path], rng: np.random.Generator) -> Path:
    """The painting or photo `paste_over` pastes the art over (its first draw of `rng`)."""
    return backgrounds[int(rng.integers(len(backgrounds)))]


def paste_over(backgrounds: Sequence[Path]) -> Transform:
    """Art with transparency pasted at 40-85% of the height of a painting or photo (resized to
    about 1024 px), at any position that keeps it inside."""
    def make(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if image.mode != "RGBA":
            raise ValueError("paste_over is for art with transparency")
        bg = Image.open(paste_background(backgrounds, rng)).convert("RGB")
        bg = ImageOps.fit(bg, (1024, 768), Image.Resampling.BILINEAR)
        height = round(bg.height * rng.uniform(0.40, 0.85))
        art = image.resize((max(1, round(image.width * height / image.height)), height),
                           Image.Resampling.LANCZOS)
        if art.width > bg.width:
            art = art.resize((bg.width, round(art.height * bg.width / art.width)))
        x = int(rng.integers(0, bg.width - art.width + 1))
        y = int(rng.integers(0, bg.height - art.height + 1))
        bg.paste(art, (x, y), art)
        return _jpeg(bg, 90)
    return make


def wild_transforms(fillers: Sequence[Path], backgrounds: Sequence[Path]) -> dict[str, Transform]:
    """The issue's transforms. `fillers`: pictures not in the catalog for the other collage
    tiles; `backgrounds`: paintings and photos (not in the catalog) that art is pasted over."""
    return {
        "rrc_35_80": rrc,
        "rrc_35_80_mirror": rrc_mirror,
        "rotate_10_20": rotate_cut,
        "jitter_blur": jitter_blur,
        "collage_tile": collage(fillers),
        "meme_jpeg50": meme,
        "screen_photo": screen_photo,
        "posterize_edges": posterize_edges,
        "aspect_1_3": aspect,
        "page_20_30": page,
        "paste_over": paste_over(backgrounds),
    }


# Transforms that only apply to art with transparency.
ALPHA_ONLY = {"paste_over"}
# The target, per transform.
TARGET = 0.90
