"""Video through PyAV (its wheel bundles FFmpeg): probing and frame sampling.

A video is registered and matched as its sampled frames: one frame per second, plus the first frame
after each scene change (mean absolute difference of 32x32 grey thumbnails above a threshold).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import av
import numpy as np
from PIL import Image

from registry.errors import CorruptMedia, MediaTooLarge

if TYPE_CHECKING:
    from registry.media.loader import MediaInfo

# Mean absolute grey-level difference (0-255) between consecutive frames that counts as a cut.
SCENE_CHANGE_THRESHOLD = 30.0
MAX_VIDEO_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Frame:
    time_s: float
    image: Image.Image
    reason: str  # "interval" or "scene"


def probe_video(stream: BinaryIO, name: str, container: str, *, max_pixels: int) -> MediaInfo:
    from registry.media.loader import VIDEO_MEDIA_TYPES, MediaInfo, _check_pixels

    try:
        with av.open(stream, mode="r") as box:
            if not box.streams.video:
                raise CorruptMedia(f"{name}: container has no video stream")
            vs = box.streams.video[0]
            width, height = vs.codec_context.width, vs.codec_context.height
            duration = float(box.duration / av.time_base) if box.duration else None
            _check_pixels(name, width, height, max_pixels)
            # Decode one frame to prove the stream is readable.
            next(box.decode(vs))
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise CorruptMedia(f"{name}: unreadable video ({exc})") from exc
    if duration is not None and duration > MAX_VIDEO_SECONDS:
        raise MediaTooLarge(f"{name}: {duration:.0f} s is over the limit of {MAX_VIDEO_SECONDS} s")
    return MediaInfo("video", VIDEO_MEDIA_TYPES[container], width, height, duration)


def _picture(frame: Any) -> Image.Image:
    image: Image.Image = frame.to_image()
    return image


def _thumb(frame: Any) -> np.ndarray:
    # FFmpeg scales to 32x32 grey: no full-size RGB conversion for frames that are not kept.
    small = frame.reformat(width=32, height=32, format="gray")
    return np.asarray(small.to_ndarray(), dtype=np.float32)


def sample_frames(
    source: str | BinaryIO, *, name: str = "<video>", interval_s: float = 1.0
) -> Iterator[Frame]:
    """Yield frames at every `interval_s` and at scene changes, in time order.

    Every frame is decoded (a cut can fall anywhere), but only the kept ones are converted to
    RGB pictures; the scene test works on 32x32 grey thumbnails made by FFmpeg's scaler.
    """
    try:
        with av.open(source, mode="r") as box:
            if not box.streams.video:
                raise CorruptMedia(f"{name}: container has no video stream")
            vs = box.streams.video[0]
            vs.thread_type = "AUTO"
            next_due = 0.0
            previous: np.ndarray | None = None
            for frame in box.decode(vs):
                t = float(frame.time) if frame.time is not None else 0.0
                thumb = _thumb(frame)
                changed = (
                    previous is not None
                    and float(np.abs(thumb - previous).mean()) > SCENE_CHANGE_THRESHOLD
                )
                previous = thumb
                if t + 1e-6 >= next_due:
                    next_due = (int(t / interval_s) + 1) * interval_s
                    yield Frame(t, _picture(frame), "interval")
                elif changed:
                    yield Frame(t, _picture(frame), "scene")
    except (av.FFmpegError, ValueError) as exc:
        raise CorruptMedia(f"{name}: unreadable video ({exc})") from exc
