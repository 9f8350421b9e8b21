"""Encoding VapourSynth frames into one Matroska segment with PyAV, and checking a segment.

A segment is one chunk's frames, encoded from its first frame (an IDR/key frame) to its last and
flushed, so it decodes alone and segments concatenate without re-encoding.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import vapoursynth as vs

from .formats import CODECS, ColourTags, EncoderSettings

# FFmpeg's planar RGB is G, B, R; VapourSynth's is R, G, B.
_GBR_FROM_RGB = (1, 2, 0)


def _plane(buffer: object, dtype: np.dtype, width: int, height: int, line_size: int) -> np.ndarray:
    """A writable (height, width) view of an FFmpeg plane with its padded rows."""
    flat = np.frombuffer(buffer, dtype=dtype)  # type: ignore[call-overload]
    return flat[: height * (line_size // flat.itemsize)].reshape(height, -1)[:, :width]


def to_av_frame(frame: vs.VideoFrame, pix_fmt: str) -> object:
    """A copy of a VapourSynth frame as an ``av.VideoFrame`` in ``pix_fmt`` (from :func:`.formats.pix_fmt_name`)."""
    import av

    out = av.VideoFrame(frame.width, frame.height, pix_fmt)
    fmt = frame.format
    if pix_fmt == "bgr0":  # packed 8-bit RGB (FFV1's only 8-bit RGB)
        plane = out.planes[0]
        packed = _plane(plane, np.dtype(np.uint8), 4 * frame.width, frame.height, plane.line_size)
        packed = packed.reshape(frame.height, frame.width, 4)
        for channel, source in ((2, 0), (1, 1), (0, 2)):  # B, G, R bytes from R, G, B planes
            packed[:, :, channel] = np.asarray(frame[source])
        packed[:, :, 3] = 0
        return out
    dtype = np.dtype(np.uint8 if fmt.bytes_per_sample == 1 else np.uint16)  # integer only (see formats)
    order = _GBR_FROM_RGB if fmt.color_family == vs.RGB else tuple(range(fmt.num_planes))
    for i, source in enumerate(order):
        src = np.asarray(frame[source])
        plane = out.planes[i]
        _plane(plane, dtype, src.shape[1], src.shape[0], plane.line_size)[...] = src
    return out


class SegmentWriter:
    """Encodes frames of one format into a Matroska file; :meth:`close` flushes and returns the count."""

    def __init__(self, path: Path, *, width: int, height: int, pix_fmt: str, fps: Fraction,
                 settings: EncoderSettings, tags: ColourTags) -> None:
        import av

        self.path = Path(path)
        self.pix_fmt = pix_fmt
        self.settings = settings
        self.count = 0
        self.container = av.open(str(self.path), "w", format="matroska")
        try:
            self.stream = self.container.add_stream(CODECS[settings.codec], rate=fps, options=settings.options())
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
            cc = self.stream.codec_context
            # The colour description goes into the codec context: libx265/libx264 write it into the
            # VUI of the bitstream, and the Matroska muxer into the track's Colour element.
            for key, value in tags.as_dict().items():
                setattr(cc, "chroma_sample_location" if key == "chroma_location" else key, value)
            self.tags = tags
            self.fps = fps
            self.time_base = cc.time_base or Fraction(fps.denominator, fps.numerator)
        except BaseException:
            self.container.close()
            raise

    def write(self, frame: vs.VideoFrame) -> None:
        import av

        out = to_av_frame(frame, self.pix_fmt)
        for key, value in self.tags.as_dict().items():
            setattr(out, key, value)
        # Stamped in the encoder's time base (as in vsrestore encode): libx265 reorders B-frames on them.
        out.time_base = self.time_base
        out.pts = round(self.count / (self.fps * self.time_base))
        try:
            self.container.mux(self.stream.encode(out))
        except av.error.FFmpegError as exc:
            raise ValueError(f"the {self.settings.codec} encoder refused its settings or the input "
                             f"({self.pix_fmt} {frame.width}x{frame.height}): {exc}") from None
        self.count += 1

    def close(self) -> int:
        """Flush the encoder and close the file; returns the number of frames written."""
        try:
            if self.count:
                self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()
        return self.count


def count_frames(path: Path) -> int:
    """Frames that decode from a segment (or any video file); a damaged file is a ValueError.

    Decoding, not counting packets: a segment is only accepted when every frame it claims decodes.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"{path} does not decode: {exc}") from None
