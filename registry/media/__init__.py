"""Safe media loading: format sniffing, size and pixel limits, EXIF orientation, video frames."""

from registry.media.loader import IMAGE_FORMATS, MediaInfo, Probed, load_image, probe
from registry.media.video import Frame, sample_frames

__all__ = ["IMAGE_FORMATS", "Frame", "MediaInfo", "Probed", "load_image", "probe", "sample_frames"]
