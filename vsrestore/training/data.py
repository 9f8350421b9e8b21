"""Readers for training and evaluation material, returning numpy arrays.

- PNG images and folders of them, Vimeo-90K septuplets: RGB ``(H, W, 3)`` / ``(T, H, W, 3)``,
  uint8 for 8-bit files and uint16 (values as stored) for 16-bit files;
- videos through PyAV: RGB frames (:func:`read_video`) or the native YUV planes
  (:func:`read_video_yuv`);
- headerless raw YUV files (:func:`read_raw_yuv`);
- the YUV <-> RGB maths used to prepare material (:func:`yuv420_to_rgb`, :func:`rgb_to_yuv420`):
  8-bit RGB sources become BT.601 limited-range YUV 4:2:0 before they are compressed.

Chroma siting: down-sampling averages 2x2 blocks, i.e. the chroma sample sits at the centre of its
four luma samples (MPEG-1/JPEG siting). Up-sampling is the matching centre-sited bilinear
interpolation (weights 3/4 and 1/4, borders replicated). H.264/HEVC streams nominally use
left-sited chroma; the half-pixel horizontal difference is ignored, which is harmless for training
data as long as the same pair of functions is used both ways.

PNG is decoded and encoded with PyAV's png codec on the file's bytes, without a demuxer or muxer,
so a path containing ``%`` is never taken for an image-sequence pattern.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

log = logging.getLogger(__name__)

PathLike = str | Path

# (Kr, Kb) luma coefficients of the supported matrices
MATRICES: dict[str, tuple[float, float]] = {
    "601": (0.299, 0.114),
    "709": (0.2126, 0.0722),
    "2020": (0.2627, 0.0593),
}
# chroma sub-sampling as (vertical, horizontal) divisors
CHROMA_DIVISORS: dict[str, tuple[int, int]] = {"420": (2, 2), "422": (1, 2), "444": (1, 1)}
# AVColorSpace values of a decoded frame -> matrix name; others fall back on the size rule
_AV_COLORSPACES = {1: "709", 5: "601", 6: "601", 9: "2020", 10: "2020"}
_AV_RANGE_FULL = 2  # AVCOL_RANGE_JPEG


class YUVFrames(NamedTuple):
    """Planes of a clip: ``y`` (T, H, W), ``u`` and ``v`` (T, Hc, Wc); unpacks as ``y, u, v``."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class VideoData:
    """RGB frames (T, H, W, 3): uint8 for 8-bit sources, uint16 (full 16-bit scale) above."""

    frames: np.ndarray
    fps: Fraction
    bits: int  # bit depth of the source samples


# --------------------------------------------------------------------------------------------------
# images and folders


def natural_sort_key(name: str | Path) -> tuple:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    text = name.name if isinstance(name, Path) else str(name)
    # re.split with a capturing group alternates text, number, text..., so keys always compare
    # str with str and int with int
    parts = re.split(r"(\d+)", text)
    return tuple(int(part) if i % 2 else part.lower() for i, part in enumerate(parts))


def read_image(path: PathLike) -> np.ndarray:
    """Read an image as RGB (H, W, 3): uint8 for <= 8-bit files, uint16 (values as stored) above.

    Grey images are replicated to three channels; alpha is dropped.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        ctx = av.CodecContext.create("png", "r")
        frames = ctx.decode(av.Packet(path.read_bytes())) + ctx.decode(None)
        if not frames:
            raise ValueError(f"{path}: no image decoded")
        frame = frames[0]
    else:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    deep = frame.format.components[0].bits > 8
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24")


def write_image(path: PathLike, array: np.ndarray) -> None:
    """Write an RGB (H, W, 3) uint8 or uint16 array as an 8- or 16-bit PNG, values unchanged."""
    array = np.ascontiguousarray(array)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {array.shape}")
    if array.dtype == np.uint8:
        in_fmt, png_fmt = "rgb24", "rgb24"
    elif array.dtype == np.uint16:
        in_fmt, png_fmt = "rgb48le", "rgb48be"  # PNG stores 16-bit samples big-endian
    else:
        raise ValueError(f"expected uint8 or uint16, got {array.dtype}")
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = array.shape[1], array.shape[0], png_fmt
    ctx.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(array, format=in_fmt)
    packets = ctx.encode(frame) + ctx.encode(None)
    Path(path).write_bytes(b"".join(bytes(p) for p in packets))


def read_frame_folder(folder: PathLike, pattern: str = "*.png") -> np.ndarray:
    """Read the images matching ``pattern`` in ``folder``, in natural order, as (T, H, W, 3)."""
    files = sorted((p for p in Path(folder).glob(pattern) if p.is_file()), key=natural_sort_key)
    if not files:
        raise FileNotFoundError(f"no files matching {pattern!r} in {folder}")
    images = [read_image(p) for p in files]
    shapes = {(im.shape, im.dtype) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"{folder}: images differ in size or depth: {sorted(map(str, shapes))}")
    return np.stack(images)


def vimeo_septuplets(root: PathLike) -> list[Path]:
    """Septuplet folders ``sequences/XXXXX/YYYY`` holding ``im1.png`` .. ``im7.png``, sorted.

    ``root`` is the folder containing ``sequences`` or ``sequences`` itself. Incomplete folders
    are skipped with a logged warning.
    """
    root = Path(root)
    sequences = root / "sequences" if (root / "sequences").is_dir() else root
    if not sequences.is_dir():
        raise FileNotFoundError(f"no Vimeo sequences folder at {root}")
    candidates = {p.parent for p in sequences.glob("*/*/im1.png")}
    complete = [f for f in candidates if all((f / f"im{i}.png").is_file() for i in range(1, 8))]
    if len(complete) < len(candidates):
        skipped = len(candidates) - len(complete)
        log.warning("%s: skipped %d incomplete septuplets", sequences, skipped)
    return sorted(complete, key=lambda p: (natural_sort_key(p.parent), natural_sort_key(p)))


def read_septuplet(folder: PathLike) -> np.ndarray:
    """Read ``im1.png`` .. ``im7.png`` of a septuplet folder as (7, H, W, 3) uint8."""
    frames = np.stack([read_image(Path(folder) / f"im{i}.png") for i in range(1, 8)])
    if frames.dtype != np.uint8:
        raise ValueError(f"{folder}: expected 8-bit images, got {frames.dtype}")
    return frames


# --------------------------------------------------------------------------------------------------
# videos


def video_frame_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U, V planes of a planar YUV PyAV frame: uint8 up to 8 bits, uint16 above.

    Non-planar or big-endian YUV formats (NV12, P010...) are first converted to the planar 4:2:0
    format of the same depth.
    """
    fmt = frame.format
    bits = fmt.components[0].bits
    if fmt.is_rgb:
        raise ValueError(f"not a YUV frame: {fmt.name}")
    if not (fmt.is_planar and len(frame.planes) == 3 and not fmt.is_big_endian):
        frame = frame.reformat(format="yuv420p" if bits <= 8 else f"yuv420p{bits}le")
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    planes = []
    for plane in frame.planes:
        # rows are padded to line_size bytes; crop to the visible width
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        planes.append(rows.view(dtype)[:, : plane.width].astype(dtype.newbyteorder("=")))
    return planes[0], planes[1], planes[2]


def stack_yuv(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> YUVFrames:
    """Stack per-frame ``(Y, U, V)`` tuples (from :func:`read_video_yuv`) into (T, ...) planes."""
    if not frames:
        raise ValueError("no frames to stack")
    return YUVFrames(*(np.stack(p) for p in zip(*frames)))


def _decoded_frames(path: PathLike, max_frames: int | None):
    """Yield (frame, fps) for the first video stream of ``path``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = Fraction(rate.numerator, rate.denominator) if rate else Fraction(0)
        for i, frame in enumerate(container.decode(stream)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame, fps


def _frame_colour(frame: av.VideoFrame) -> tuple[str, bool]:
    """Matrix and full-range flag of a decoded frame; unspecified matrices follow the size rule
    of :mod:`vsrestore.bridge.colour` (BT.709 from 1280x720 up, BT.601 below)."""
    matrix = _AV_COLORSPACES.get(int(frame.colorspace))
    if matrix is None:
        matrix = "709" if frame.width >= 1280 or frame.height >= 720 else "601"
    full = int(frame.color_range) == _AV_RANGE_FULL or frame.format.name.startswith("yuvj")
    return matrix, full


def read_video(path: PathLike, max_frames: int | None = None) -> VideoData:
    """Decode a video to RGB frames (T, H, W, 3) and its frame rate.

    YUV sources are converted with :func:`yuv420_to_rgb` using the stream's matrix and range
    (BT.601/BT.709 by size when unspecified) and rounded to uint8 for 8-bit sources or to the full
    16-bit scale (uint16, 0..65535) for deeper ones. RGB sources are returned as decoded.
    """
    frames, fps, bits = [], Fraction(0), 8
    for frame, fps in _decoded_frames(path, max_frames):
        bits = frame.format.components[0].bits
        if frame.format.is_rgb:
            frames.append(frame.to_ndarray(format="rgb24" if bits <= 8 else "rgb48le"))
            continue
        matrix, full = _frame_colour(frame)
        y, u, v = video_frame_planes(frame)
        rgb = yuv420_to_rgb(y, u, v, bits=bits, matrix=matrix, full_range=full)
        peak, dtype = (255, np.uint8) if bits <= 8 else (65535, np.uint16)
        frames.append(np.rint(rgb * np.float32(peak)).astype(dtype))
    if not frames:
        raise ValueError(f"{path}: no video frames decoded")
    return VideoData(frames=np.stack(frames), fps=fps, bits=bits)


def read_video_yuv(
    path: PathLike, max_frames: int | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode a YUV video to per-frame native ``(Y, U, V)`` planes (see :func:`video_frame_planes`).

    :func:`stack_yuv` turns the list into (T, ...) arrays.
    """
    return [video_frame_planes(frame) for frame, _ in _decoded_frames(path, max_frames)]


def read_raw_yuv(
    path: PathLike, width: int, height: int, bits: int = 8, chroma: str = "420"
) -> YUVFrames:
    """Read a headerless planar YUV file (Y, then U, then V per frame).

    Samples are bytes for 8-bit files and 16-bit little-endian words (LSB-aligned, as
    ``yuv420p10le``) above; planes come back uint8 or uint16. Chroma planes of odd sizes are
    rounded up, as FFmpeg does.
    """
    if chroma not in CHROMA_DIVISORS:
        raise ValueError(f"chroma must be one of {sorted(CHROMA_DIVISORS)}, not {chroma!r}")
    if not 8 <= bits <= 16:
        raise ValueError(f"bits must be 8..16, not {bits}")
    vdiv, hdiv = CHROMA_DIVISORS[chroma]
    cw, ch = -(-width // hdiv), -(-height // vdiv)
    luma, chroma_size = width * height, cw * ch
    itemsize = 1 if bits == 8 else 2
    frame_bytes = (luma + 2 * chroma_size) * itemsize
    size = Path(path).stat().st_size
    if size == 0 or size % frame_bytes:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of {width}x{height} {bits}-bit {chroma} "
            f"frames ({frame_bytes} bytes each)"
        )
    data = np.fromfile(path, dtype=np.uint8 if itemsize == 1 else "<u2")
    data = data.reshape(size // frame_bytes, -1)
    dtype = np.uint8 if itemsize == 1 else np.uint16
    n = len(data)
    y = data[:, :luma].reshape(n, height, width).astype(dtype)
    u = data[:, luma : luma + chroma_size].reshape(n, ch, cw).astype(dtype)
    v = data[:, luma + chroma_size :].reshape(n, ch, cw).astype(dtype)
    if bits > 8 and max(int(y.max()), int(u.max()), int(v.max())) >= 1 << bits:
        warnings.warn(f"{path}: samples exceed {bits} bits; is the file MSB-aligned?", stacklevel=2)
    return YUVFrames(y, u, v)


# --------------------------------------------------------------------------------------------------
# YUV <-> RGB


def _upsample2(c: np.ndarray, axis: int) -> np.ndarray:
    """Centre-sited bilinear x2 along ``axis`` (weights 3/4, 1/4; borders replicated)."""
    n = c.shape[axis]
    prev = np.take(c, np.r_[0, np.arange(n - 1)], axis=axis)
    nxt = np.take(c, np.r_[np.arange(1, n), n - 1], axis=axis)
    even, odd = 0.75 * c + 0.25 * prev, 0.75 * c + 0.25 * nxt
    out = np.stack([even, odd], axis=axis + 1 if axis >= 0 else axis)
    shape = list(c.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def _chroma_to_luma_size(c: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Up-sample chroma (..., Hc, Wc) to the luma size ``shape`` (factor 1 or 2 per axis)."""
    for axis, size in ((-2, shape[0]), (-1, shape[1])):
        if c.shape[axis] != size:
            if c.shape[axis] != -(-size // 2):
                raise ValueError(f"chroma size {c.shape[-2:]} does not fit luma size {shape}")
            c = _upsample2(c, axis)
            c = c[..., :size, :] if axis == -2 else c[..., :size]
    return c


def _coefficients(matrix: str) -> tuple[float, float, float]:
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {sorted(MATRICES)}, not {matrix!r}")
    kr, kb = MATRICES[matrix]
    return kr, 1.0 - kr - kb, kb


def yuv420_to_rgb(
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    bits: int = 8,
    matrix: str = "601",
    full_range: bool = False,
) -> np.ndarray:
    """Convert integer YUV planes to float32 RGB (..., H, W, 3) in [0, 1] (clipped).

    ``y`` is (..., H, W); ``u``, ``v`` (..., H/2, W/2) for 4:2:0 (4:2:2 and 4:4:4 are inferred from
    the plane sizes). Limited range maps Y 16..235 and C 16..240 (scaled by 2^(bits-8)) to
    [0, 1] and [-0.5, 0.5]; full range uses 0..2^bits-1. Chroma is up-sampled centre-sited
    bilinearly (module docstring).
    """
    kr, kg, kb = _coefficients(matrix)
    scale = float(1 << (bits - 8))
    yf = np.asarray(y, dtype=np.float32)
    cb = _chroma_to_luma_size(np.asarray(u, dtype=np.float32), yf.shape[-2:])
    cr = _chroma_to_luma_size(np.asarray(v, dtype=np.float32), yf.shape[-2:])
    if full_range:
        top = float((1 << bits) - 1)
        yf, cb, cr = yf / top, (cb - (1 << (bits - 1))) / top, (cr - (1 << (bits - 1))) / top
    else:
        yf = (yf - 16 * scale) / (219 * scale)
        cb, cr = (cb - 128 * scale) / (224 * scale), (cr - 128 * scale) / (224 * scale)
    r = yf + 2 * (1 - kr) * cr
    b = yf + 2 * (1 - kb) * cb
    g = (yf - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0).astype(np.float32)


def rgb_to_yuv420(
    rgb: np.ndarray, matrix: str = "601", full_range: bool = False, bits: int = 8
) -> YUVFrames:
    """Convert RGB (..., H, W, 3) to YUV 4:2:0 planes of ``bits`` bits (uint8 or uint16).

    uint8 input is read as 0..255, uint16 as 0..65535, floats as [0, 1]. H and W must be even.
    Chroma is the mean of each 2x2 block (centre-sited), taken before rounding. BT.601 limited
    range by default, as used for 8-bit RGB training material.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3 or rgb.ndim < 3:
        raise ValueError(f"expected (..., H, W, 3), got shape {rgb.shape}")
    h, w = rgb.shape[-3:-1]
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even width and height, got {w}x{h}")
    if rgb.dtype == np.uint8:
        x = rgb.astype(np.float64) / 255.0
    elif rgb.dtype == np.uint16:
        x = rgb.astype(np.float64) / 65535.0
    else:
        x = rgb.astype(np.float64)
    kr, kg, kb = _coefficients(matrix)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    yf = kr * r + kg * g + kb * b
    # chroma is linear in RGB, so averaging it at full resolution equals converting the averages
    cb, cr = (b - yf) / (2 * (1 - kb)), (r - yf) / (2 * (1 - kr))
    lead = cb.shape[:-2]
    cb = cb.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))
    cr = cr.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))
    top = (1 << bits) - 1
    if full_range:
        planes = (yf * top, (1 << (bits - 1)) + cb * top, (1 << (bits - 1)) + cr * top)
    else:
        scale = float(1 << (bits - 8))
        planes = (
            16 * scale + 219 * scale * yf,
            128 * scale + 224 * scale * cb,
            128 * scale + 224 * scale * cr,
        )
    dtype = np.uint8 if bits == 8 else np.uint16
    return YUVFrames(*(np.clip(np.rint(p), 0, top).astype(dtype) for p in planes))
