"""Build benchmark data for matching at catalog scale from real art in Debian packages.

Produces, under --out DIR:

* ``catalog/`` and ``catalog.csv`` (file, origin, source): N distinct pictures. Real pictures
  (png/jpg/webp/dds/tga from wesnoth-1.16-data, plasma-workspace-wallpapers, gnome-backgrounds,
  openclipart-png, supertuxkart-data; copied as the original file, RGBA kept) come first; when
  they run out, game-like scenes (alpha sprites composited over tiles cut from large textures and
  wallpapers, JPEG quality 90) fill the catalog up to N.
* ``queries/`` and ``queries.csv`` (file, related, catalog_file, transform, source): M JPEGs of
  1-2 megapixels (longest side 1200-1700 px, quality 85-92). About 95% are unrelated to the
  catalog (held-out real pictures that never enter the catalog, or scenes built only from
  held-out material); the related share are catalog assets edited by a transform chosen
  round-robin (resize+JPEG, centre crop 70%, off-centre crop 60%, horizontal flip, logo/text
  overlay, screenshot embedding at 50%, rotation 5 degrees, letterbox padding).

How the pictures are chosen:

* Packages are fetched with ``apt-get download`` (or taken from --debs DIR) and unpacked with
  ``dpkg -x`` into the cache (--cache, default $CLEARHOUSE_BENCH_CACHE or
  ~/.cache/clearhouse-bench). Unpacked trees and per-package scan results are reused.
* A real picture has both sides >= 96 px and grey std > 12 (RGBA composited over mid grey for
  the statistics only). Near-identical pictures are dropped: sha256 of the picture downscaled to
  16x16 grey (quantised to 32 levels), one image per plasma wallpaper.
* Pictures are grouped into families: one folder of a package (one wallpaper for plasma), then
  families whose pictures' PDQ hashes come within 56 bits are merged (content, not names). Each
  family has one role: held out (only for unrelated queries), catalog picture, or scene
  material. Scenes in the catalog use no
  material from catalog pictures' or held-out families, so a related query has one right answer
  and an unrelated query shares no content with the catalog. When scenes are needed, the families
  richest in background tiles are moved from catalog pictures to scene material until every
  scene can have its own tile; past that point tiles are reused with a flip/colour variant and a
  different sprite set (reported as "tile reuse").

Everything is deterministic for a given --seed and set of packages. Work runs in a process pool
(--workers, default 2); images are loaded one task at a time.

Run: .venv/bin/python bench/prepare_catalog.py --out /tmp/c10k --assets 10000 [--queries 400]
     [--related-share 0.05] [--seed 0] [--cache DIR] [--debs DIR] [--extra-packages]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

PACKAGES = [
    "wesnoth-1.16-data",
    "plasma-workspace-wallpapers",
    "gnome-backgrounds",
    "openclipart-png",
    "supertuxkart-data",
]
EXTRA_PACKAGES = ["0ad-data", "flightgear-data-base"]
EXTS = {".png", ".jpg", ".jpeg", ".webp", ".dds", ".tga"}
SCAN_VERSION = 2  # 2: PDQ of each picture (content grouping)
# Pictures whose PDQ hashes (over grey, any turn or flip) are this close are one content group:
# animation frames, recolours, themed variants of one icon (a match between them is no error).
GROUP_PDQ_BITS = 56
GROUP_PDQ_QUALITY = 50

MIN_PICTURE_SIDE = 96
MIN_SPRITE_SIDE = 40
MIN_STD = 12.0
TILE_MIN, TILE_MAX = 384, 768
MAX_PIXELS = 64_000_000
QUERY_LONG = (1200, 1700)
QUERY_MP = (1_020_000, 1_980_000)
TRANSFORMS = [
    "resize_jpeg",
    "crop_center_70",
    "crop_offcenter_60",
    "hflip",
    "overlay_logo_text",
    "screenshot_embed_50",
    "rotate_5",
    "letterbox",
]

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


# --------------------------------------------------------------------------- packages


def run(cmd: list[str], cwd: Path | None = None) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")


def find_deb(pkg: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        hits = sorted(d.glob(f"{pkg}_*.deb")) if d.is_dir() else []
        if hits:
            return hits[-1]
    return None


def ensure_package(pkg: str, cache: Path, debs: Path | None) -> tuple[Path, str]:
    """Return (unpacked root, deb file name); downloads and unpacks only when needed."""
    deb_dir = cache / "debs"
    deb_dir.mkdir(parents=True, exist_ok=True)
    search = [debs, deb_dir] if debs else [deb_dir]
    deb = find_deb(pkg, [d for d in search if d])
    if deb is None:
        print(f"  apt-get download {pkg} ...", flush=True)
        run(["apt-get", "download", pkg], cwd=deb_dir)
        deb = find_deb(pkg, [deb_dir])
        if deb is None:
            raise RuntimeError(f"apt-get download {pkg} produced no .deb")
    root = cache / "unpacked" / deb.stem
    if not (root / ".unpacked-ok").exists():
        print(f"  dpkg -x {deb.name}", flush=True)
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
        run(["dpkg", "-x", str(deb), str(tmp)])
        tmp.rename(root)
        (root / ".unpacked-ok").write_text(deb.name)
    return root, deb.name


# --------------------------------------------------------------------------- scanning


def to_rgba(img: Image.Image) -> Image.Image:
    """RGBA copy, fully decoded (safe to use after the file is closed)."""
    img.load()
    if img.mode == "RGBA":
        return img
    if img.mode in ("I", "I;16", "I;16B", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        img = Image.fromarray(np.clip(arr * 255.0 / hi, 0, 255).astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGBA")


def over(img: Image.Image, color: tuple[int, int, int]) -> Image.Image:
    """RGBA -> RGB composited over a solid colour (RGB input is returned unchanged)."""
    if img.mode == "RGB":
        return img
    rgba = to_rgba(img)
    base = Image.new("RGB", rgba.size, color)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def scan_one(job: tuple[str, str]) -> dict | None:
    root, rel = job
    path = os.path.join(root, rel)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if min(w, h) < MIN_SPRITE_SIDE or w * h > MAX_PIXELS:
                return None
            if im.format == "JPEG":
                im.draft("RGB", (256, 256))
            im.load()
            small = to_rgba(im)
        small.thumbnail((256, 256), Image.Resampling.BOX)
        alpha = np.asarray(small.getchannel("A"))
        transparent = float((alpha < 128).mean())
        grey = over(small, (128, 128, 128)).convert("L")
        std = float(np.asarray(grey, dtype=np.float32).std())
        q = np.asarray(grey.resize((16, 16), Image.Resampling.BOX), dtype=np.uint8) >> 3
        h16 = hashlib.sha256(q.tobytes()).hexdigest()[:20]
        import pdqhash

        # pdqhash's dihedral order: identity first, the left-right mirror sixth.
        turns, quality = pdqhash.compute_dihedral(np.ascontiguousarray(
            np.asarray(over(small, (128, 128, 128)), dtype=np.uint8)))
        pdq = np.packbits(turns[0].astype(np.uint8)).tobytes().hex()
        pdq_m = np.packbits(turns[5].astype(np.uint8)).tobytes().hex()
    except Exception:
        return None
    return {"rel": rel, "w": w, "h": h, "tr": round(transparent, 4), "std": round(std, 2),
            "h16": h16, "pdq": pdq, "pdq_m": pdq_m, "pdq_q": int(quality)}


def scan_package(pkg: str, root: Path, deb_name: str, cache: Path, pool) -> list[dict]:
    out = cache / "scan" / f"{Path(deb_name).stem}.v{SCAN_VERSION}.jsonl"
    if out.exists():
        return [json.loads(line) for line in out.read_text().splitlines() if line]
    rels = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix.lower() in EXTS and p.is_file() and not p.is_symlink()
    )
    recs = [r for r in pool.imap(scan_one, [(str(root), r) for r in rels], chunksize=32) if r]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in recs))
    tmp.rename(out)
    return recs


# --------------------------------------------------------------------------- roles

def family_of(pkg: str, rel: str) -> str:
    """The folder a picture is in (one plasma wallpaper each): a folder of game art or clip art
    is one set (animation frames, terrain-tile variants, an icon theme's icons on one base, one
    artist's moons and flags), whose pictures share drawn content whatever their names say.
    Measured: with families by file name, 13 of 150 held-out queries met a catalog picture of
    their own folder (full moon / waning moon, happy / angry monkey, Niue / Tuvalu flags); with
    folders, 8 of 380 at 1,000 assets, all shared drawings: wesnoth's help screenshot in five
    languages (l10n/<lang>/ folders, now one family), one joker figure in two card decks, a clip
    art house inside openclipart's composed examples (special/examples, now never used)."""
    parts = rel.split("/")
    if pkg == "plasma-workspace-wallpapers" and "wallpapers" in parts:
        i = parts.index("wallpapers")
        return f"{pkg}:{parts[i + 1] if i + 1 < len(parts) else rel}"
    if "l10n" in parts[:-2]:  # one screenshot per language: .../l10n/<lang>/recruit.png
        i = parts.index("l10n")
        parts = parts[:i + 1] + parts[i + 2:]
    return f"{pkg}:{'/'.join(parts[:-1])}"


def is_sprite_source(pkg: str, rel: str) -> bool:
    if pkg == "wesnoth-1.16-data":
        return "/images/units/" in rel or "/images/portraits/" in rel
    return pkg in ("supertuxkart-data", "openclipart-png", "0ad-data")


def is_background_source(pkg: str, rel: str) -> bool:
    if pkg == "openclipart-png":
        return False
    if pkg == "wesnoth-1.16-data":
        return "/images/" in rel and "/doc/" not in rel
    return True


@dataclass
class Item:
    key: str  # "pkg:rel"
    pkg: str
    rel: str
    w: int
    h: int
    tr: float
    std: float
    h16: str
    family: str
    pdq: str = ""
    pdq_m: str = ""
    pdq_q: int = 0
    picture: bool = False
    sprite: bool = False
    background: bool = False


@dataclass
class Pools:
    pictures: list[Item] = field(default_factory=list)
    sprites: list[Item] = field(default_factory=list)
    backgrounds: list[Item] = field(default_factory=list)


def classify(pkg: str, recs: list[dict]) -> list[Item]:
    items = []
    for r in recs:
        it = Item(f"{pkg}:{r['rel']}", pkg, r["rel"], r["w"], r["h"], r["tr"], r["std"],
                  r["h16"], family_of(pkg, r["rel"]), r.get("pdq", ""), r.get("pdq_m", ""),
                  r.get("pdq_q", 0))
        if it.std <= MIN_STD or "/special/examples/" in it.rel:  # composed of other clip art
            continue
        it.picture = min(it.w, it.h) >= MIN_PICTURE_SIDE
        it.sprite = 0.08 <= it.tr <= 0.92 and is_sprite_source(pkg, it.rel)
        it.background = (it.tr < 0.002 and min(it.w, it.h) >= TILE_MIN
                         and is_background_source(pkg, it.rel))
        if it.picture or it.sprite:
            items.append(it)
    return items


def dedupe(items: list[Item]) -> list[Item]:
    """Keep one item per 16x16 grey hash (largest first) and one picture per plasma wallpaper."""
    items = sorted(items, key=lambda i: (-i.w * i.h, i.key))
    seen: set[str] = set()
    seen_wall: set[str] = set()
    out = []
    for it in items:
        if it.h16 in seen:
            continue
        seen.add(it.h16)
        if it.pkg == "plasma-workspace-wallpapers":
            if it.family in seen_wall:
                continue
            seen_wall.add(it.family)
        out.append(it)
    return sorted(out, key=lambda i: i.key)


def group_by_content(items: list[Item]) -> tuple[int, int]:
    """Merge families whose pictures are near copies of each other (PDQ over grey within
    `GROUP_PDQ_BITS`, as they are or mirrored): file names do not tell that wesnoth's castle-tile
    variants or openclipart's themed icons are one picture. Returns (families merged, size of
    the largest group). Rewrites `Item.family` in place."""
    import faiss

    strong = [i for i in items if i.pdq and i.pdq_q >= GROUP_PDQ_QUALITY]
    if len(strong) < 2:
        return 0, 1
    codes = np.frombuffer(b"".join(bytes.fromhex(i.pdq) for i in strong), np.uint8).reshape(
        -1, 32)
    index = faiss.IndexBinaryFlat(256)
    index.add(codes)
    parent = {f: f for f in {i.family for i in items}}

    def root(f: str) -> str:
        while parent[f] != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    merged = 0
    for field_name in ("pdq", "pdq_m"):  # as it is, and mirrored (sprites face both ways)
        q = np.frombuffer(b"".join(bytes.fromhex(getattr(i, field_name)) for i in strong),
                          np.uint8).reshape(-1, 32)
        lims, _, ids = index.range_search(q, GROUP_PDQ_BITS + 1)
        for a in range(len(strong)):
            for b in ids[lims[a]:lims[a + 1]]:
                ra, rb = root(strong[a].family), root(strong[int(b)].family)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
                    merged += 1
    sizes: Counter[str] = Counter()
    for it in items:
        it.family = root(it.family)
        sizes[it.family] += 1
    return merged, max(sizes.values())


def tiles_for(it: Item, seed: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping tiles (x, y, w, h) of 384-768 px cut from a large opaque picture."""
    rng = random.Random(f"{seed}:{it.key}")
    tw = rng.randint(TILE_MIN, min(TILE_MAX, it.w))
    th = rng.randint(TILE_MIN, min(TILE_MAX, it.h))
    nx, ny = it.w // tw, it.h // th
    x0, y0 = rng.randint(0, it.w - nx * tw), rng.randint(0, it.h - ny * th)
    return [(x0 + i * tw, y0 + j * th, tw, th) for j in range(ny) for i in range(nx)]


def aspect(it: Item) -> float:
    return max(it.w, it.h) / min(it.w, it.h)


# --------------------------------------------------------------------------- workers

_ROOTS: dict[str, str] = {}
_SOURCE_CACHE: OrderedDict[str, Image.Image] = OrderedDict()
_SPRITE_CACHE: OrderedDict[str, Image.Image] = OrderedDict()


def init_worker(roots: dict[str, str]) -> None:
    _ROOTS.update(roots)
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def src_path(key: str) -> str:
    pkg, rel = key.split(":", 1)
    return os.path.join(_ROOTS[pkg], rel)


def _cached(cache: OrderedDict, key: str, size: int, load):
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    val = load(key)
    cache[key] = val
    while len(cache) > size:
        cache.popitem(last=False)
    return val


def load_background(key: str) -> Image.Image:
    def load(k: str) -> Image.Image:
        with Image.open(src_path(k)) as im:
            return over(to_rgba(im), (128, 128, 128))

    return _cached(_SOURCE_CACHE, key, 3, load)


def load_sprite(key: str) -> Image.Image:
    def load(k: str) -> Image.Image:
        with Image.open(src_path(k)) as im:
            rgba = to_rgba(im)
        bbox = rgba.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
        if bbox:
            rgba = rgba.crop(bbox)
        rgba.thumbnail((512, 512), Image.Resampling.LANCZOS)
        return rgba

    return _cached(_SPRITE_CACHE, key, 256, load)


def hue_shift(img: Image.Image, shift: int) -> Image.Image:
    hsv = np.array(img.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def compose_scene(plan: dict) -> Image.Image:
    x, y, w, h = plan["tile"]
    canvas = load_background(plan["bg"]).crop((x, y, x + w, y + h))
    v = plan["variant"]
    if v % 4 == 1:
        canvas = ImageOps.mirror(canvas)
    elif v % 4 == 2:
        canvas = ImageOps.flip(canvas)
    elif v % 4 == 3:
        canvas = canvas.rotate(180)
    if v >= 4:
        canvas = hue_shift(canvas, plan["hue"])
    canvas = canvas.copy()
    short = min(canvas.size)
    for sp in plan["sprites"]:
        s = load_sprite(sp["key"])
        scale = sp["size"] * short / max(s.size)
        sw, sh = max(8, round(s.width * scale)), max(8, round(s.height * scale))
        s = s.resize((sw, sh), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
        if sp["flip"]:
            s = ImageOps.mirror(s)
        px = round(sp["cx"] * canvas.width - sw / 2)
        py = round(sp["cy"] * canvas.height - sh / 2)
        canvas.paste(s, (px, py), s)
    return canvas


def describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"


def catalog_task(task: dict) -> tuple[str, str | None]:
    dest = task["dest"]
    try:
        if task["kind"] == "real":
            shutil.copyfile(src_path(task["key"]), dest)
        else:
            compose_scene(task["plan"]).save(dest, "JPEG", quality=90)
        return dest, None
    except Exception as exc:  # keep going; the caller reports failures
        return dest, describe(exc)


def catalog_batch(batch: list[dict]) -> list[tuple[str, str | None]]:
    return [catalog_task(t) for t in batch]


def query_size(w: int, h: int, rng: random.Random) -> tuple[int, int] | None:
    a = max(w, h) / min(w, h)
    lo = max(QUERY_LONG[0], math.ceil(math.sqrt(QUERY_MP[0] * a)))
    hi = min(QUERY_LONG[1], math.floor(math.sqrt(QUERY_MP[1] * a)))
    if lo > hi:
        return None
    long = rng.randint(lo, hi)
    short = round(long / a)
    return (long, short) if w >= h else (short, long)


def fit_query(img: Image.Image, rng: random.Random) -> Image.Image:
    """Resize to 1-2 MP with the longest side in 1200-1700 (centre-crop extreme aspects)."""
    w, h = img.size
    if max(w, h) / min(w, h) > 2.6:
        if w > h:
            nw = round(h * 2.6)
            img = img.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
        else:
            nh = round(w * 2.6)
            img = img.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))
        w, h = img.size
    if QUERY_LONG[0] <= max(w, h) <= QUERY_LONG[1] and QUERY_MP[0] <= w * h <= QUERY_MP[1]:
        return img
    size = query_size(w, h, rng)
    assert size is not None
    return img.resize(size, Image.Resampling.LANCZOS)


def matte(rng: random.Random) -> tuple[int, int, int]:
    r = rng.random()
    if r < 0.5:
        return (255, 255, 255)
    if r < 0.75:
        return (rng.randint(10, 50),) * 3  # type: ignore[return-value]
    return tuple(rng.randint(170, 250) for _ in range(3))  # type: ignore[return-value]


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
              "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"):
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size=size)


WORDS = ["STUDIO", "PREVIEW", "arena", "Pixel", "forge", "QUEST", "LEGENDS", "fan art", "wiki",
         "mod pack", "sample", "DRAFT", "Guild", "Realm", "online", "HD remaster", "@artfeed"]


def overlay_logo_text(img: Image.Image, rng: random.Random) -> Image.Image:
    img = fit_query(img, rng).copy()
    w, h = img.size
    d = ImageDraw.Draw(img, "RGBA")
    # logo: a rounded badge with initials in a random corner, about 18% of the width
    lw = int(w * rng.uniform(0.14, 0.22))
    lh = int(lw * 0.45)
    corner = rng.randrange(4)
    lx = int(w * 0.03) if corner in (0, 2) else w - lw - int(w * 0.03)
    ly = int(h * 0.04) if corner in (0, 1) else h - lh - int(h * 0.04)
    col = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255), 200)
    d.rounded_rectangle((lx, ly, lx + lw, ly + lh), radius=lh // 4, fill=col,
                        outline=(255, 255, 255, 230), width=max(2, lh // 20))
    d.text((lx + lw / 2, ly + lh / 2), "".join(rng.choice("ACDGKMPQRSTX") for _ in range(3)),
           font=font(int(lh * 0.55)), fill=(255, 255, 255, 255), anchor="mm")
    # caption text across the lower part
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
    f = font(int(h * rng.uniform(0.045, 0.07)))
    ty = int(h * rng.uniform(0.62, 0.8))
    d.text((w / 2, ty), text, font=f, fill=(255, 255, 255, 235), anchor="mm",
           stroke_width=max(2, f.size // 12), stroke_fill=(0, 0, 0, 200))
    return img


def screenshot_embed(img: Image.Image, rng: random.Random) -> Image.Image:
    """The picture at 50% of the canvas width inside a desktop/browser-like screenshot."""
    cw = rng.choice([1440, 1536, 1600, 1680])
    ch = round(cw / rng.choice([16 / 10, 16 / 9, 3 / 2]))
    dark = rng.random() < 0.5
    bg = (32, 34, 38) if dark else (244, 245, 247)
    fg = (210, 210, 215) if dark else (60, 64, 70)
    panel = (48, 51, 57) if dark else (228, 230, 234)
    canvas = Image.new("RGB", (cw, ch), bg)
    d = ImageDraw.Draw(canvas)
    bar = 56
    d.rectangle((0, 0, cw, bar), fill=(25, 27, 30) if dark else (52, 84, 140))
    for i, c in enumerate([(237, 95, 87), (245, 190, 80), (96, 200, 90)]):
        d.ellipse((16 + i * 26, 20, 32 + i * 26, 36), fill=c)
    d.rounded_rectangle((140, 12, cw * 0.6, bar - 12), radius=12, fill=panel)
    d.text((160, bar / 2), "https://" + rng.choice(["forum", "gallery", "shop", "blog"])
           + ".example.net/" + rng.choice(WORDS).lower().replace(" ", "-"),
           font=font(18), fill=fg, anchor="lm")
    side = int(cw * 0.18)
    d.rectangle((0, bar, side, ch), fill=panel)
    f = font(20)
    for i in range(12):
        yy = bar + 30 + i * 44
        if yy > ch - 30:
            break
        d.text((24, yy), rng.choice(WORDS), font=f, fill=fg)
    tw = int(cw * 0.5)
    th = round(img.height * tw / img.width)
    if th > ch - bar - 120:
        th = ch - bar - 120
        tw = round(img.width * th / img.height)
    pic = img.resize((tw, th), Image.Resampling.LANCZOS)
    px = side + rng.randint(20, max(21, cw - side - tw - 20))
    py = bar + rng.randint(40, max(41, ch - bar - th - 60))
    d.text((px, py - 30), " ".join(rng.choice(WORDS) for _ in range(3)), font=font(24), fill=fg)
    canvas.paste(pic, (px, py))
    ty = py + th + 16
    for i in range(6):
        if ty + i * 28 > ch - 20:
            break
        tx2 = px + int(tw * rng.uniform(0.5, 1.0))
        d.rectangle((px, ty + i * 28, tx2, ty + i * 28 + 12), fill=panel)
    rx = min(cw - 20, px + tw + 30)
    for i in range(8):
        yy = bar + 40 + i * 90
        if yy + 70 > ch or rx + 80 > cw:
            break
        d.rounded_rectangle((rx, yy, cw - 24, yy + 70), radius=8, fill=panel)
    return canvas


def apply_transform(name: str, img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    if name == "resize_jpeg":
        f = rng.uniform(0.4, 0.6)
        small = img.resize((max(16, round(w * f)), max(16, round(h * f))), Image.Resampling.BOX)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=rng.randint(60, 75))
        buf.seek(0)
        return Image.open(buf).convert("RGB")
    if name == "crop_center_70":
        cw, ch = round(w * 0.7), round(h * 0.7)
        return img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    if name == "crop_offcenter_60":
        cw, ch = round(w * 0.6), round(h * 0.6)
        fx, fy = rng.choice([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.5),
                             (1.0, 0.5), (0.5, 0.0), (0.5, 1.0)])
        fx = min(1.0, max(0.0, fx + rng.uniform(-0.1, 0.1)))
        fy = min(1.0, max(0.0, fy + rng.uniform(-0.1, 0.1)))
        x, y = round((w - cw) * fx), round((h - ch) * fy)
        return img.crop((x, y, x + cw, y + ch))
    if name == "hflip":
        return ImageOps.mirror(img)
    if name == "overlay_logo_text":
        return overlay_logo_text(img, rng)
    if name == "screenshot_embed_50":
        return screenshot_embed(img, rng)
    if name == "rotate_5":
        angle = 5.0 if rng.random() < 0.5 else -5.0
        return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                          fillcolor=(0, 0, 0))
    if name == "letterbox":
        a = w / h
        target = 2.0 if a < 1.5 else 1.0
        nw, nh = (round(h * target), h) if a < target else (w, round(w / target))
        canvas = Image.new("RGB", (nw, nh), (0, 0, 0))
        canvas.paste(img, ((nw - w) // 2, (nh - h) // 2))
        return canvas
    raise ValueError(name)


def query_task(task: dict) -> tuple[str, str | None, int, int]:
    dest = task["dest"]
    rng = random.Random(task["seed"])
    try:
        if task["kind"] == "heldout_picture":
            with Image.open(src_path(task["key"])) as im:
                img = over(to_rgba(im), matte(rng))
        elif task["kind"] == "heldout_scene":
            img = compose_scene(task["plan"])
        else:  # related
            with Image.open(task["catalog_path"]) as im:
                img = over(to_rgba(im), matte(rng))
            img = apply_transform(task["transform"], img, rng)
        img = fit_query(img, rng)
        img.save(dest, "JPEG", quality=rng.randint(85, 92))
        return dest, None, img.width, img.height
    except Exception as exc:
        return dest, describe(exc), 0, 0


# --------------------------------------------------------------------------- planning


def plan_scenes(n: int, tiles: list[tuple[Item, tuple]], sprites: list[Item],
                rng: random.Random, tag: str) -> tuple[list[dict], int]:
    """Plans for n distinct scenes; returns (plans, number of tile reuses)."""
    if n == 0:
        return [], 0
    if not tiles or not sprites:
        raise SystemExit(f"cannot build {tag} scenes: {len(tiles)} tiles, {len(sprites)} sprites")
    order = list(range(len(tiles)))
    rng.shuffle(order)
    seen: set[tuple] = set()
    plans = []
    reuse = 0
    for i in range(n):
        bg, tile = tiles[order[i % len(order)]]
        variant = i // len(order)
        reuse += variant > 0
        while True:
            k = rng.randint(2, 5)
            chosen = rng.sample(sprites, min(k, len(sprites)))
            sig = (bg.key, tile, variant, frozenset(s.key for s in chosen))
            if sig not in seen:
                seen.add(sig)
                break
        sp = []
        for s in chosen:
            sp.append({"key": s.key, "size": round(rng.uniform(0.22, 0.6), 3),
                       "cx": round(rng.uniform(0.15, 0.85), 3),
                       "cy": round(rng.uniform(0.2, 0.85), 3), "flip": rng.random() < 0.5})
        plans.append({"bg": bg.key, "tile": tile, "variant": variant,
                      "hue": rng.randint(24, 232), "sprites": sp})
    return plans, reuse


def scene_source(plan: dict) -> str:
    x, y, w, h = plan["tile"]
    sprites = "|".join(s["key"] for s in plan["sprites"])
    return f"bg={plan['bg']}@{x},{y},{w}x{h}/v{plan['variant']};sprites={sprites}"


def short_name(it: Item) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(it.rel).stem)[:40].strip("-")
    pk = it.pkg.split("-")[0]
    return f"{pk}_{stem}{Path(it.rel).suffix.lower()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--assets", type=int, required=True, help="catalog size N (<= 100000)")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--related-share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "CLEARHOUSE_BENCH_CACHE", Path.home() / ".cache" / "clearhouse-bench")))
    ap.add_argument("--debs", type=Path, help="take PKG_*.deb from this folder if present")
    ap.add_argument("--extra-packages", action="store_true",
                    help=f"also use {', '.join(EXTRA_PACKAGES)} (several GB)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if not 1 <= args.assets <= 100_000:
        ap.error("--assets must be 1..100000")
    t_all = time.perf_counter()
    cache = args.cache.expanduser().resolve()
    out = args.out.expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent
    if out == repo or repo in out.parents or cache == repo or repo in cache.parents:
        ap.error("--out and --cache must be outside the repository")
    marker = out / ".prepare-catalog"
    ours = marker.exists() or (out / "catalog.csv").exists()
    if out.exists() and any(out.iterdir()) and not ours:
        ap.error(f"{out} exists, is not empty and holds no catalog.csv: refusing to overwrite")
    (cache / "unpacked").mkdir(parents=True, exist_ok=True)
    pkgs = PACKAGES + (EXTRA_PACKAGES if args.extra_packages else [])

    # 1. packages
    t0 = time.perf_counter()
    roots: dict[str, str] = {}
    debs: dict[str, str] = {}
    for pkg in pkgs:
        try:
            root, deb = ensure_package(pkg, cache, args.debs)
        except Exception as exc:
            print(f"  skipping {pkg}: {exc}", file=sys.stderr)
            continue
        roots[pkg], debs[pkg] = str(root), deb
    if not roots:
        raise SystemExit("no package available")
    print(f"packages ready: {len(roots)} in {time.perf_counter() - t0:.1f}s ({cache})")

    ctx = get_context("fork")
    with ctx.Pool(args.workers, initializer=init_worker, initargs=(roots,)) as pool:
        # 2. scan
        t0 = time.perf_counter()
        items: list[Item] = []
        scanned: dict[str, int] = {}
        for pkg, root in roots.items():
            recs = scan_package(pkg, Path(root), debs[pkg], cache, pool)
            scanned[pkg] = len(recs)
            items += classify(pkg, recs)
        items = dedupe(items)
        merged, largest = group_by_content(items)
        pictures = [i for i in items if i.picture]
        print(f"scan: {time.perf_counter() - t0:.1f}s; content grouping merged {merged} families "
              f"(largest group {largest} pictures)")
        print(f"  {'package':<30}{'decoded>=40px':>14}{'pictures':>10}{'sprites':>9}"
              f"{'backgr.':>9}")
        for pkg in roots:
            mine = [i for i in items if i.pkg == pkg]
            print(f"  {pkg:<30}{scanned[pkg]:>14}{sum(i.picture for i in mine):>10}"
                  f"{sum(i.sprite for i in mine):>9}{sum(i.background for i in mine):>9}")
        print(f"  {'total distinct':<30}{'':>14}{len(pictures):>10}"
              f"{sum(i.sprite for i in items):>9}{sum(i.background for i in items):>9}")

        # 3. roles by family
        rng = random.Random(args.seed)
        n_rel = round(args.queries * args.related_share)
        n_unrel = args.queries - n_rel
        fam: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            fam[it.family].append(it)
        pic_fams = sorted({i.family for i in pictures})
        rng.shuffle(pic_fams)
        n_hold_target = min(n_unrel, len(pictures) // 4)
        held_fams: set[str] = set()
        held_pics: list[Item] = []
        for f in pic_fams:
            if len(held_pics) >= n_hold_target:
                break
            good = [i for i in fam[f] if i.picture and aspect(i) <= 2.4]
            if good:
                held_fams.add(f)
                held_pics += good
        # some pure sprite families also go to the held-out side for held-out scenes
        for f in sorted(fam):
            pure = f not in held_fams and not any(i.picture for i in fam[f])
            if pure and int(hashlib.sha256(f"{args.seed}:{f}".encode()).hexdigest(), 16) % 10 == 0:
                held_fams.add(f)
        real_fams = [f for f in pic_fams if f not in held_fams]
        real_pool = [i for f in real_fams for i in fam[f] if i.picture]
        material_fams = {f for f in fam if f not in held_fams and f not in set(real_fams)}

        def material_tiles(fams: set[str]) -> list[tuple[Item, tuple]]:
            return [(i, t) for f in sorted(fams) for i in fam[f] if i.background
                    for t in tiles_for(i, args.seed)]

        tiles = material_tiles(material_fams)
        if len(real_pool) >= args.assets:
            chosen_real_fams = set(real_fams)
        else:
            # move the families richest in tiles from catalog pictures to scene material
            rich = sorted(real_fams, key=lambda f: (-sum(len(tiles_for(i, args.seed))
                                                         for i in fam[f] if i.background), f))
            moved: set[str] = set()
            n_real = len(real_pool)
            for f in rich:
                ft = sum(len(tiles_for(i, args.seed)) for i in fam[f] if i.background)
                if ft == 0 or len(tiles) >= args.assets - n_real:
                    break
                moved.add(f)
                n_real -= sum(i.picture for i in fam[f])
                tiles += [(i, t) for i in fam[f] if i.background
                          for t in tiles_for(i, args.seed)]
            material_fams |= moved
            chosen_real_fams = set(real_fams) - moved
        real_pool = [i for f in sorted(chosen_real_fams) for i in fam[f] if i.picture]
        rng.shuffle(real_pool)
        cat_real = real_pool[: args.assets]
        n_scenes = args.assets - len(cat_real)
        sprites = [i for f in sorted(material_fams) for i in fam[f] if i.sprite]
        if n_scenes and len(sprites) < 100:  # allow sprites from catalog-picture families
            sprites += [i for f in sorted(chosen_real_fams) for i in fam[f] if i.sprite]
        scene_plans, reuse = plan_scenes(n_scenes, tiles, sprites, rng, "catalog")
        print(f"roles: {len(held_fams)} held-out families ({len(held_pics)} pictures), "
              f"{len(cat_real)} real pictures in catalog (of {len(real_pool)} available), "
              f"{n_scenes} scenes from {len(tiles)} tiles and {len(sprites)} sprites "
              f"(tile reuse: {reuse})")

        # 4. catalog
        t0 = time.perf_counter()
        if out.exists():
            for sub in ("catalog", "queries"):
                shutil.rmtree(out / sub, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        marker.write_text("written by bench/prepare_catalog.py; rerunning replaces this folder\n")
        (out / "catalog").mkdir()
        (out / "queries").mkdir()
        tasks = []
        rows = []
        for idx, it in enumerate(cat_real):
            name = f"{idx:06d}_{short_name(it)}"
            tasks.append({"kind": "real", "key": it.key, "dest": str(out / "catalog" / name)})
            rows.append((name, "real", it.key, it.w, it.h))
        for j, plan in enumerate(scene_plans):
            name = f"{len(cat_real) + j:06d}_scene.jpg"
            tasks.append({"kind": "scene", "plan": plan, "dest": str(out / "catalog" / name)})
            rows.append((name, "scene", scene_source(plan), plan["tile"][2], plan["tile"][3]))
        # one batch per background source, so each source is decoded once; copies in batches
        batches: dict[str, list[dict]] = defaultdict(list)
        for k, t in enumerate(tasks):
            batches[t["plan"]["bg"] if t["kind"] == "scene" else f"copy{k // 256}"].append(t)
        # biggest batches first for a better balance between workers
        jobs = sorted(batches.values(), key=lambda b: (-len(b), b[0]["dest"]))
        failed = set()
        for done in pool.imap_unordered(catalog_batch, jobs):
            for dest, err in done:
                if err:
                    failed.add(Path(dest).name)
                    if len(failed) <= 10:
                        print(f"  catalog item failed: {Path(dest).name}: {err}", file=sys.stderr)
        if failed:
            print(f"  {len(failed)} catalog items failed", file=sys.stderr)
        rows = [r for r in rows if r[0] not in failed]
        with open(out / "catalog.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["file", "origin", "source"])
            wr.writerows(r[:3] for r in rows)
        t_cat = time.perf_counter() - t0
        print(f"catalog: {len(rows)} files ({sum(r[1] == 'real' for r in rows)} real, "
              f"{sum(r[1] == 'scene' for r in rows)} scenes) in {t_cat:.1f}s")

        # 5. queries
        t0 = time.perf_counter()
        qrng = random.Random(args.seed + 1)
        qtasks: list[dict] = []
        held = sorted(held_pics, key=lambda i: i.key)
        qrng.shuffle(held)
        for it in held[:n_unrel]:
            qtasks.append({"kind": "heldout_picture", "key": it.key, "related": 0,
                           "catalog_file": "", "transform": "", "source": it.key})
        n_hscenes = n_unrel - min(n_unrel, len(held))
        if n_hscenes:
            htiles = material_tiles(held_fams)
            hsprites = [i for f in sorted(held_fams) for i in fam[f] if i.sprite]
            hplans, _ = plan_scenes(n_hscenes, htiles, hsprites, qrng, "held-out")
            for p in hplans:
                qtasks.append({"kind": "heldout_scene", "plan": p, "related": 0,
                               "catalog_file": "", "transform": "", "source": scene_source(p)})
        eligible = [r for r in rows if min(r[3], r[4]) >= 128 and max(r[3], r[4]) /
                    min(r[3], r[4]) <= 2.0] or rows
        picks = qrng.sample(eligible, min(n_rel, len(eligible)))
        for k, r in enumerate(picks):
            qtasks.append({"kind": "related", "catalog_path": str(out / "catalog" / r[0]),
                           "related": 1, "catalog_file": r[0],
                           "transform": TRANSFORMS[k % len(TRANSFORMS)], "source": r[2]})
        qrng.shuffle(qtasks)
        for q, t in enumerate(qtasks):
            t["dest"] = str(out / "queries" / f"q{q:05d}.jpg")
            t["seed"] = f"{args.seed}:{q}"
        results = {d: (e, w, h) for d, e, w, h in pool.imap(query_task, qtasks, chunksize=4)}
    qrows = []
    for t in qtasks:
        err, w, h = results[t["dest"]]
        if err:
            print(f"  query failed: {Path(t['dest']).name}: {err}", file=sys.stderr)
            continue
        qrows.append((Path(t["dest"]).name, t["related"], t["catalog_file"], t["transform"],
                      t["source"], w, h))
    with open(out / "queries.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "related", "catalog_file", "transform", "source"])
        wr.writerows(r[:5] for r in qrows)
    t_q = time.perf_counter() - t0
    mps = [w * h / 1e6 for *_, w, h in qrows]
    print(f"queries: {len(qrows)} ({sum(r[1] for r in qrows)} related: "
          f"{dict(Counter(r[3] for r in qrows if r[1]))}; "
          f"{sum(1 for r in qrows if not r[1] and '=' in r[4])} held-out scenes) "
          f"{min(mps):.2f}-{max(mps):.2f} MP in {t_q:.1f}s")
    print(f"done in {time.perf_counter() - t_all:.1f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
