"""Local features for stage 2: ORB finds candidates cheaply, SIFT verifies them.

Perceptual hashes miss small rotations, heavy overlays, off-centre crops and pictures embedded in
a screenshot. Local features survive them, but SIFT costs 50-160 ms per query picture, and most
dataset items match nothing. So each catalog picture keeps two kinds:
- ORB (binary, 256 bits, about 5 ms per picture) of the picture and of its mirror image: the
  query's ORB descriptors vote in an approximate binary index for candidate assets, and a cheap
  ORB RANSAC on the few candidates decides which ones deserve SIFT (`stages/local.py`);
- RootSIFT (SIFT descriptors, L1-normalised, square-rooted) at a low contrast threshold, kept on
  disk and read only for candidates: a RANSAC homography with at least `MIN_INLIERS` inliers spread
  over the asset is the match (SIFT's worst wrong pair measured 9; ORB's 16, which is why ORB
  alone never decides a match below `ORB_ACCEPT_INLIERS`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from registry.fingerprint.regions import Box

# 2: ORB (and mirrored ORB) stored beside SIFT; 3: art with transparency keeps keypoints inside
# its alpha mask only, of the picture composited on a neutral grey.
KEYPOINT_VERSION = 3
# Catalog images are scaled (up or down) to this longest side for SIFT. 384 rather than 512 was
# 0.65x the import cost; 320 rather than 384 (fifth round of issue 10): SIFT 48.8 -> 31.7 ms of
# CPU per bench asset, a 1,000-asset import on 2 workers 16.6, 21.0 -> 22.1, 24.4 assets/s
# (alternating runs), and both recall tests keep every transform (the wild one 0.94 -> 0.94,
# one more blurred picture found; test_recall all at 100%).
CATALOG_SIDE_PX = 320
QUERY_SIDE_PX = 768  # queries keep more pixels: the asset may fill only part of them
QUERY_MIN_SIDE_PX = 512
CATALOG_MAX_KEYPOINTS = 600
QUERY_MAX_KEYPOINTS = 1000
CONTRAST_THRESHOLD = 0.01
RATIO = 0.8  # Lowe's ratio test
MIN_INLIERS = 12
RANSAC_REPROJ_PX = 6.0
# The similarity gate before the homography (`_similarity_holds`): its tolerance (query pixels)
# and its RANSAC's most samples.
GATE_REPROJ_PX = 18.0
GATE_ITERS = 2000
# Inliers must cover some of the asset (repeated texture piles its inliers into one spot).
MIN_INLIER_SPREAD = 0.04  # fraction of the asset's area covered by the inliers' bounding box
# ORB: catalog pictures at 512 px, queries at 640 px (the asset may fill part of them).
ORB_CATALOG_SIDE_PX = 512
ORB_QUERY_SIDE_PX = 640
ORB_CATALOG_FEATURES = 400
ORB_QUERY_FEATURES = 800
ORB_RATIO = 0.8
# A blurred query (`is_soft`) gets its ORB at this side instead: blur measured in the picture's
# own pixels shrinks with it, and the catalog's sharper ORB levels meet it there. Measured on
# the wild recall test's colour-jitter + blur queries: the right asset's votes went from 2 to 18
# (myrmidon) and 12 to 24 (thunderer) between 640 and 320 px.
ORB_SOFT_QUERY_SIDE_PX = 320
SOFT_LAPLACIAN_VAR = 15.0
# Keypoints of art with transparency stay this far inside the visible content (pixels at the
# extraction size): a keypoint on the outline describes whatever background the art is pasted
# over, which differs in every copy.
MASK_INSET_PX = 4


@dataclass(frozen=True)
class KeypointSet:
    """Keypoints of one picture: xy in the picture's own pixel coordinates, uint8 descriptors."""

    width: int
    height: int
    xy: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 128) uint8 (SIFT values)

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez_compressed(out, size=np.array([self.width, self.height], np.int32),
                            xy=self.xy.astype(np.float32), d=self.descriptors.astype(np.uint8))
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeypointSet:
        with np.load(io.BytesIO(data)) as z:
            size = z["size"]
            return cls(int(size[0]), int(size[1]), z["xy"], z["d"])


@dataclass(frozen=True)
class LocalFeatures:
    """What stage 2 keeps of one catalog picture (or video frame), in its own pixels:
    SIFT for verification, ORB of the picture and of its mirror image for candidates."""

    sift: KeypointSet
    orb: KeypointSet
    orb_mirror: KeypointSet

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        arrays: dict[str, np.ndarray] = {}
        for name, keys in (("s", self.sift), ("o", self.orb), ("m", self.orb_mirror)):
            arrays[f"{name}_size"] = np.array([keys.width, keys.height], np.int32)
            arrays[f"{name}_xy"] = keys.xy.astype(np.float32)
            arrays[f"{name}_d"] = keys.descriptors.astype(np.uint8)
        np.savez_compressed(out, allow_pickle=False, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        with np.load(io.BytesIO(data)) as z:
            def part(name: str) -> KeypointSet:
                size = z[f"{name}_size"]
                return KeypointSet(int(size[0]), int(size[1]), z[f"{name}_xy"], z[f"{name}_d"])
            return cls(part("s"), part("o"), part("m"))


def _scaled_grey(image: Image.Image, side: int, min_side: int) -> tuple[np.ndarray, float]:
    longest = max(image.size)
    target = min(max(longest, min_side), side)
    scale = target / longest
    grey = image.convert("L")
    if scale != 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        grey = grey.resize(size, Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.uint8), scale


def _scaled_mask(mask: Image.Image | None, shape: tuple[int, ...],
                 mirror: bool = False) -> np.ndarray | None:
    """The visible-content mask (mode "L", 255 = visible) at the extraction size, moved
    `MASK_INSET_PX` inside the outline; None when there is none."""
    if mask is None:
        return None
    height, width = shape[:2]
    scaled = np.asarray(mask.convert("L").resize((width, height), Image.Resampling.NEAREST))
    inside = (scaled >= 128).astype(np.uint8) * 255
    if MASK_INSET_PX:
        kernel = np.ones((2 * MASK_INSET_PX + 1,) * 2, np.uint8)
        inside = np.asarray(cv2.erode(inside, kernel, borderType=cv2.BORDER_CONSTANT,
                                      borderValue=255), np.uint8)
    return np.ascontiguousarray(inside[:, ::-1]) if mirror else inside


def extract(image: Image.Image, *, query: bool = False,
            mask: Image.Image | None = None) -> KeypointSet:
    """SIFT keypoints of a picture (strongest first), coordinates in the picture's pixels.
    `mask` (same size as the picture, 255 = visible): keypoints inside it only."""
    side = QUERY_SIDE_PX if query else CATALOG_SIDE_PX
    limit = QUERY_MAX_KEYPOINTS if query else CATALOG_MAX_KEYPOINTS
    grey, scale = _scaled_grey(image, side, QUERY_MIN_SIDE_PX if query else CATALOG_SIDE_PX)
    sift = cv2.SIFT_create(  # type: ignore[attr-defined]
        nfeatures=limit, contrastThreshold=CONTRAST_THRESHOLD)
    kps, desc = sift.detectAndCompute(grey, _scaled_mask(mask, grey.shape))
    if desc is None or not kps:
        return KeypointSet(image.width, image.height, np.zeros((0, 2), np.float32),
                           np.zeros((0, 128), np.uint8))
    order = np.argsort([-k.response for k in kps])[:limit]
    xy = np.array([kps[i].pt for i in order], np.float32) / scale
    d = np.clip(np.rint(desc[order]), 0, 255).astype(np.uint8)
    return KeypointSet(image.width, image.height, xy, d)


def is_soft(image: Image.Image) -> bool:
    """True for a blurred (or near-flat) picture: the variance of its Laplacian at <= 512 px is
    below `SOFT_LAPLACIAN_VAR` (sharp photos measure 100-5,000; a 0.5% blur about 2-10)."""
    grey = image.convert("L")
    if max(grey.size) > 512:
        grey = grey.copy()
        grey.thumbnail((512, 512), Image.Resampling.BILINEAR)
    return float(cv2.Laplacian(np.asarray(grey), cv2.CV_32F).var()) < SOFT_LAPLACIAN_VAR


def extract_orb(image: Image.Image, *, query: bool = False, mirror: bool = False,
                mask: Image.Image | None = None, side: int | None = None) -> KeypointSet:
    """ORB keypoints (256-bit descriptors as 32 bytes), coordinates in the picture's pixels.
    `mirror`: of the left-right mirror image (coordinates in the mirror's pixels). `mask` (of
    the picture, not mirrored; 255 = visible): keypoints inside it only. `side`: the longest
    side to work at, instead of the query's or the catalog's."""
    side = side or (ORB_QUERY_SIDE_PX if query else ORB_CATALOG_SIDE_PX)
    limit = ORB_QUERY_FEATURES if query else ORB_CATALOG_FEATURES
    grey, scale = _scaled_grey(image, side, side)
    if mirror:
        grey = np.ascontiguousarray(grey[:, ::-1])
    orb = cv2.ORB_create(nfeatures=limit, fastThreshold=10)  # type: ignore[attr-defined]
    kps, desc = orb.detectAndCompute(grey, _scaled_mask(mask, grey.shape, mirror))
    if desc is None or not kps:
        return KeypointSet(image.width, image.height, np.zeros((0, 2), np.float32),
                           np.zeros((0, 32), np.uint8))
    xy = np.array([k.pt for k in kps], np.float32) / scale
    return KeypointSet(image.width, image.height, xy, np.ascontiguousarray(desc, np.uint8))


def local_features(image: Image.Image, mask: Image.Image | None = None) -> LocalFeatures:
    """Everything stage 2 keeps of a catalog picture. `mask`: its visible content, for art with
    transparency (the picture itself composited on a neutral background)."""
    return LocalFeatures(extract(image, mask=mask), extract_orb(image, mask=mask),
                         extract_orb(image, mirror=True, mask=mask))


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT: L1-normalise, then square root (Hellinger kernel as a Euclidean distance)."""
    d = descriptors.astype(np.float32)
    d /= d.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(d)


@dataclass(frozen=True)
class Verification:
    inliers: int
    good: int
    region: Box  # the asset's outline projected into the query, clipped to it
    angle_deg: float
    scale: float
    # The asset's corners (top-left, top-right, bottom-right, bottom-left) projected into the
    # query, in the query's pixels, not clipped.
    outline: tuple[tuple[float, float], ...] = ()


def _similarity_holds(src: np.ndarray, dst: np.ndarray, min_inliers: int) -> bool:
    """True when a similarity (rotation, uniform scale, shift) takes at least `min_inliers`
    pairs within `GATE_REPROJ_PX`: the gate before the homography. A similarity is fitted from
    2 pairs (a homography from 4, by a costlier solve), so its RANSAC finds a model in far fewer
    samples, at a fraction of the cost per sample: a wrong candidate's homography RANSAC runs
    all its 2,000 iterations (20-35 ms), its similarity one 0.1-2 ms. The looser tolerance
    keeps aspect changes and a photographed screen's perspective. Only a count, like the
    homography's first test: a check of distinct points or of the model here lost a true
    match whose best-counted similarity was a wrong one (the wild test's rotated bridge)."""
    model, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=GATE_REPROJ_PX,
        maxIters=GATE_ITERS, confidence=0.995)
    return model is not None and mask is not None and int(mask.sum()) >= min_inliers


def verify(query: KeypointSet, query_root: np.ndarray, asset: KeypointSet,
           asset_root: np.ndarray, *, binary: bool = False,
           min_inliers: int = MIN_INLIERS) -> Verification | None:
    """RANSAC homography from asset to query; None unless it is a plausible, well-supported one.
    `binary`: the descriptors are ORB's (Hamming distance) rather than RootSIFT."""
    if len(query) < 8 or len(asset) < 8:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2)
    pairs = matcher.knnMatch(query_root, asset_root, k=2)
    ratio = ORB_RATIO if binary else RATIO
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < min_inliers:
        return None
    src = asset.xy[np.array([m.trainIdx for m in good])].astype(np.float32)
    dst = query.xy[np.array([m.queryIdx for m in good])].astype(np.float32)
    if not _similarity_holds(src, dst, min_inliers):
        return None
    homography, mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_REPROJ_PX,
                                          maxIters=2000, confidence=0.995)
    if homography is None or mask is None:
        return None
    keep = mask.ravel().astype(bool)
    inliers = int(keep.sum())
    if inliers < min_inliers:
        return None
    # Distinct inlier positions (one keypoint matched many times counts once).
    inlier_src = np.unique(np.round(src[keep]), axis=0)
    if len(inlier_src) < min_inliers:
        return None
    span = inlier_src.max(axis=0) - inlier_src.min(axis=0)
    if span[0] * span[1] < MIN_INLIER_SPREAD * asset.width * asset.height:
        return None
    a = homography[:2, :2]
    det = float(np.linalg.det(a))
    if not 1e-3 < det < 1e3 or abs(float(homography[2, 0])) > 0.01 or \
            abs(float(homography[2, 1])) > 0.01:
        return None  # mirrored, degenerate or wildly perspective: not a copy of the asset
    corners = np.array([[0, 0], [asset.width, 0], [asset.width, asset.height],
                        [0, asset.height]], np.float32).reshape(-1, 1, 2)
    projected = cv2.perspectiveTransform(corners, homography).reshape(-1, 2)
    if not cv2.isContourConvex(projected.astype(np.float32)):
        return None
    x0, y0 = np.clip(projected.min(axis=0), 0, [query.width, query.height])
    x1, y1 = np.clip(projected.max(axis=0), 0, [query.width, query.height])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    # Counter-clockwise positive, as seen on screen (image y runs down), like "rot90".
    angle = -float(np.degrees(np.arctan2(a[1, 0], a[0, 0])))
    return Verification(inliers, len(good), (int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
                        angle, float(np.sqrt(abs(det))),
                        tuple((float(px), float(py)) for px, py in projected))
