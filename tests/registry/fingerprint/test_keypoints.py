"""The similarity gate before stage 2's homography (`keypoints._similarity_holds`), on real
photos: it lets through the geometry of real reuse (rotation, aspect change, a photographed
screen's perspective) and stops the ratio-test pairs of unrelated pictures before their costly
RANSAC."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from registry.fingerprint import keypoints
from tests.photos import skimage_photo


def _photo(name: str) -> Image.Image:
    with Image.open(skimage_photo(name)) as im:
        return im.convert("RGB")


def _warped(image: Image.Image, corners: list[tuple[float, float]], size: tuple[int, int]
            ) -> Image.Image:
    w, h = image.size
    matrix = cv2.getPerspectiveTransform(
        np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32), np.array(corners, np.float32))
    out = cv2.warpPerspective(np.asarray(image), matrix, size, borderValue=(18, 18, 18))
    return Image.fromarray(out)


def _pairs(query: keypoints.KeypointSet, asset: keypoints.KeypointSet
           ) -> tuple[np.ndarray, np.ndarray]:
    """The ratio-test pairs `verify` fits its geometry to: (asset points, query points)."""
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, asset.descriptors, k=2)
    good = [p[0] for p in matches
            if len(p) == 2 and p[0].distance < keypoints.ORB_RATIO * p[1].distance]
    return (asset.xy[[m.trainIdx for m in good]].astype(np.float32),
            query.xy[[m.queryIdx for m in good]].astype(np.float32))


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "chelsea.png"])
def test_the_gate_keeps_rotated_stretched_and_photographed_reuse(name: str) -> None:
    photo = _photo(name)
    asset = keypoints.extract_orb(photo)
    w, h = photo.size
    views = {
        # a photographed screen: corners moved by 7% of the sides (the wild test's largest)
        "perspective": _warped(photo, [(0.07 * w + 40, 40), (w + 40, 0.07 * h + 40),
                                       (0.93 * w + 40, h + 40), (40, 0.93 * h + 40)],
                               (w + 80, h + 80)),
        "aspect_1_3": photo.resize((round(w * 1.3), h)),
        "rotate_15": photo.rotate(15, resample=Image.Resampling.BILINEAR, expand=True),
    }
    for label, view in views.items():
        query = keypoints.extract_orb(view, query=True)
        src, dst = _pairs(query, asset)
        assert keypoints._similarity_holds(src, dst, keypoints.MIN_INLIERS), label
        found = keypoints.verify(query, query.descriptors, asset, asset.descriptors,
                                 binary=True, min_inliers=keypoints.MIN_INLIERS)
        assert found is not None and found.inliers >= 30, label


def test_the_gate_stops_unrelated_photos_before_the_homography() -> None:
    names = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
             "horse.png"]
    sets = {n: keypoints.extract_orb(_photo(n)) for n in names}
    queries = {n: keypoints.extract_orb(_photo(n), query=True) for n in names}
    tried = stopped = 0
    for q in names:
        for a in names:
            if q == a:
                continue
            src, dst = _pairs(queries[q], sets[a])
            if len(src) < 8:
                continue  # verify stops these before any geometry
            tried += 1
            stopped += not keypoints._similarity_holds(src, dst, 8)
    # Unrelated photos pass the ratio test often enough to need the gate; it stops most of
    # them (the rest go on to the homography, which rejects them as before).
    assert tried >= 10
    assert stopped >= 0.8 * tried, (stopped, tried)
