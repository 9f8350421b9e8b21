"""Training and evaluation sources: any path the readers understand, as RGB frames in memory.

A path may be a Vimeo-style septuplet tree (a folder holding or named ``sequences``), a folder of
PNG frames, a video file (decoded with PyAV), a raw planar YUV file whose name gives its size
and depth, e.g. ``cars_320x240_30f.i420`` or ``sparks_480x270_5f_yuv420p10le.yuv``, or a still
image (PNG, JPEG), which becomes a clip of a camera panning across it (:func:`pan_clip`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .data import read_frame_folder, read_image, read_raw_yuv, read_septuplet, read_video, vimeo_septuplets, yuv420_to_rgb

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg"}
RAW_SUFFIXES = {".yuv", ".i420"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
PAN_FRAMES = 24  # frames of a panned still when no max_frames is given
PanMotion = Literal["rigid", "video"]


@dataclass(frozen=True)
class Source:
    """A clip of RGB frames (T, H, W, 3): uint8 for 8-bit material, uint16 (full scale) above."""

    name: str
    frames: np.ndarray

    @property
    def bits(self) -> int:
        return 8 if self.frames.dtype == np.uint8 else 16


def raw_geometry(path: Path) -> tuple[int, int, int]:
    """Width, height and bits from a raw file's name (``..._WxH_...``, ``p10``/``p12``/``p16``)."""
    size = re.search(r"(\d+)x(\d+)", path.name)
    if size is None:
        raise ValueError(f"{path}: a raw YUV file's name must give its size, e.g. clip_320x240.yuv")
    depth = re.search(r"p(1[0-6])(le)?", path.name)
    return int(size.group(1)), int(size.group(2)), int(depth.group(1)) if depth else 8


def load_sources(
    paths: list[str | Path], max_frames: int | None = None, shrink: int = 1, pan_motion: PanMotion = "rigid",
    strides: tuple[int, ...] = (1,), pan_frames: int | None = None, segments: int = 1,
) -> list[Source]:
    """Read every clip under ``paths``; ``max_frames`` caps each clip's length.

    With ``segments`` > 1 a longer video goes on: it gives up to that many clips of ``max_frames``
    consecutive frames (the first keeps its name, the next are ``<name>_seg<k>``; a shorter last one
    is kept if it holds at least half of ``max_frames``). Each segment is drawn from as often as any
    clip: more of the real footage, and more weight to it against the panned stills.

    Every video also becomes one clip per temporal stride in ``strides`` (its frames ``::stride``,
    named ``<name>_s<stride>`` above 1): faster motion of the same material, coded anew.
    A still becomes one pan of ``max_frames`` frames, or with ``pan_frames`` as many pans of that
    length as fill ``max_frames`` (``<stem>_pan<k>``), each on its own path: shorter pans may move
    faster (a pan may cross a quarter of the photograph) and in more directions.

    ``shrink`` > 1 area-averages every video (files, frame folders, raw YUV) by that factor; stills
    are panned at half their size whatever it is, rigidly (:func:`pan_clip`) or with the local
    motion, a moving object and the sensor noise of real video (``"video"``, :func:`video_pan_clip`).
    """
    if shrink < 1:
        raise ValueError(f"shrink must be >= 1, not {shrink}")
    if not strides or any(stride < 1 for stride in strides):
        raise ValueError(f"strides must be one or more integers >= 1, not {strides}")
    if pan_frames is not None and pan_frames < 2:
        raise ValueError(f"pan_frames must be >= 2, not {pan_frames}")
    if segments < 1 or (segments > 1 and max_frames is None):
        raise ValueError(f"segments must be >= 1 (above 1 only with max_frames given), not {segments}")
    if pan_motion not in ("rigid", "video"):
        raise ValueError(f"pan_motion must be 'rigid' or 'video', not {pan_motion!r}")
    pan = pan_clip if pan_motion == "rigid" else video_pan_clip

    read_frames = max_frames * segments if max_frames is not None else None

    def video(name: str, frames: np.ndarray) -> list[Source]:
        frames = area_average(frames, shrink) if shrink > 1 else frames
        parts = [(name, frames)] if max_frames is None else [
            (name if k == 0 else f"{name}_seg{k}", frames[start : start + max_frames])
            for k, start in enumerate(range(0, frames.shape[0], max_frames))
            if k == 0 or frames.shape[0] - start >= max_frames / 2]
        return [Source(part_name if stride == 1 else f"{part_name}_s{stride}", part[::stride])
                for part_name, part in parts for stride in strides]

    sources: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path.name == "sequences" or (path / "sequences").is_dir()):
            for folder in vimeo_septuplets(path):
                sources += video(f"{folder.parent.name}_{folder.name}", read_septuplet(folder)[:read_frames])
        elif path.is_dir():
            sources += video(path.name, read_frame_folder(path)[:read_frames])
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            sources += video(path.stem, read_video(path, read_frames).frames)
        elif path.suffix.lower() in RAW_SUFFIXES:
            width, height, bits = raw_geometry(path)
            y, u, v = read_raw_yuv(path, width, height, bits)
            rgb = yuv420_to_rgb(y[:read_frames], u[:read_frames], v[:read_frames], bits=bits)
            peak, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
            sources += video(path.stem, np.rint(rgb * np.float32(peak)).astype(dtype))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            seed = int.from_bytes(path.name.encode()[:8].ljust(8, b"_"), "little")
            image, frames = read_image(path), max_frames or PAN_FRAMES
            if pan_frames is None:
                sources.append(Source(f"{path.stem}_pan", pan(image, frames, seed)))
            else:
                sources += [Source(f"{path.stem}_pan{k}", pan(image, pan_frames, seed + k))
                            for k in range(-(-frames // pan_frames))]
        else:
            raise ValueError(f"{path}: not a folder, video ({', '.join(sorted(VIDEO_SUFFIXES))}), raw YUV file or "
                             f"image ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sources


def pan_clip(image: np.ndarray, frames: int, seed: int, max_speed: float = 2.0) -> np.ndarray:
    """A clip of a camera panning across a still ``image`` (H, W, 3), at half its size.

    Still photographs hold far more real detail than the compressed clips at hand. Each output frame
    is a 2x2 area average of a crop that moves by whole pixels at full size, so the motion has
    half-pixel precision and every frame gets the same (mild) filtering, with no interpolation blur.
    The velocity (up to ``max_speed`` output pixels per frame, less where a long clip would leave
    the image) drifts a little from frame to frame;
    ``seed`` fixes the path. The area average keeps 8-bit images 8-bit (rounded) and 16-bit ones 16-bit.
    """
    speed, travel, crop_h, crop_w = _pan_geometry(image.shape[:2], frames, max_speed)
    path = _camera_path(np.random.default_rng(seed), frames, speed, travel)
    out = np.empty((frames, crop_h // 2, crop_w // 2, 3), dtype=image.dtype)
    for t, (y, x) in enumerate(np.rint(path).astype(int)):
        out[t] = area_average(image[y : y + crop_h, x : x + crop_w], 2)
    return out


def video_pan_clip(
    image: np.ndarray, frames: int, seed: int, max_speed: float = 2.0, sway: float = 1.5, objects: int = 1,
    noise: float = 2.0,
) -> np.ndarray:
    """A clip of a still ``image`` (H, W, 3) at half its size that moves like video, not like a slide.

    A rigid pan (:func:`pan_clip`) shows a restoration network the same picture coded several
    times: it learns to align and average, which real video rarely allows. Here, on top of the
    camera path of :func:`pan_clip`:

    - the picture sways non-rigidly: a smooth random displacement of up to ``sway`` output pixels,
      three modes each oscillating at its own rate, as foliage, water or a face move;
    - ``objects`` objects cut from elsewhere in the photograph cross the frame, each on its own path
      (bouncing at the borders), covering and uncovering the background;
    - every frame gets fresh Gaussian sensor noise, its standard deviation drawn per clip up to
      ``noise`` 8-bit codes (the noise is part of the truth: real footage holds it too).

    Frames are sampled at full size (cubic spline) and 2x2 area-averaged; the dtype is kept.
    """
    from scipy import ndimage  # scikit-image's dependency: only the "train" extra needs it

    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    margin = int(np.ceil(2 * sway)) + 2  # full-size pixels the sway may reach past the crop
    speed, travel, crop_h, crop_w = _pan_geometry((height, width), frames, max_speed, margin)
    peak = float(np.iinfo(image.dtype).max)
    channels = [ndimage.spline_filter(image[..., c].astype(np.float32), order=3) for c in range(3)]

    modes = []  # (field (2, h, w) in full-size pixels, rate in radians per frame, phase)
    for _ in range(3):
        field = ndimage.zoom(rng.normal(size=(2, 4, 4)), (1, crop_h / 4, crop_w / 4), order=3)[:, :crop_h, :crop_w]
        field *= rng.uniform(0.2, 1.0) * 2 * sway / 3 / max(float(np.abs(field).max()), 1e-6)
        modes.append((field.astype(np.float32), rng.uniform(0.03, 0.4), rng.uniform(0, 2 * np.pi)))

    movers = []  # (sprite, soft elliptical mask, position, velocity in full-size pixels per frame)
    for _ in range(objects):
        side = int(rng.integers(min(crop_h, crop_w) // 5, min(crop_h, crop_w) // 2.5)) // 2 * 2
        sy, sx = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        r = (np.arange(side, dtype=np.float32) - (side - 1) / 2) / (side / 2)
        mask = np.clip((1 - np.hypot(r[:, None], r[None, :] * rng.uniform(0.6, 1.0))) * side / 2, 0, 1)[..., None]
        movers.append([image[sy : sy + side, sx : sx + side].astype(np.float32), mask,
                       rng.uniform([0, 0], [crop_h - side, crop_w - side]), rng.uniform(-3, 3, size=2)])
    # the noise draws its own numbers, so that a clip's motion does not depend on its noise
    noise_rng = np.random.default_rng([seed, 1])
    sigma = noise_rng.uniform(0, noise) * peak / 255

    path = _camera_path(rng, frames, speed, travel, margin)
    grid = np.mgrid[0:crop_h, 0:crop_w].astype(np.float32)
    out = np.empty((frames, crop_h // 2, crop_w // 2, 3), dtype=image.dtype)
    for t in range(frames):
        coords = grid + path[t].astype(np.float32)[:, None, None]
        for field, rate, phase in modes:
            coords += field * np.float32(np.sin(rate * t + phase))
        frame = np.stack([ndimage.map_coordinates(ch, coords, order=3, prefilter=False, mode="nearest")
                          for ch in channels], axis=-1)
        for sprite, mask, pos, _ in movers:
            oy, ox = np.rint(pos).astype(int)
            region = frame[oy : oy + len(sprite), ox : ox + len(sprite)]
            region += mask * (sprite - region)
        half = frame.reshape(crop_h // 2, 2, crop_w // 2, 2, 3).mean(axis=(1, 3))
        if sigma > 0:
            half += noise_rng.normal(0, sigma, size=half.shape).astype(np.float32)
        out[t] = np.clip(np.rint(half), 0, peak).astype(image.dtype)
        for mover in movers:
            limit = np.array([crop_h, crop_w], dtype=float) - len(mover[0])
            mover[2] = mover[2] + mover[3]
            mover[3] = np.where((mover[2] < 0) | (mover[2] > limit), -mover[3], mover[3])
            mover[2] = np.clip(mover[2], 0, limit)
    return out


def _pan_geometry(size: tuple[int, int], frames: int, max_speed: float, margin: int = 0) -> tuple[float, int, int, int]:
    """A pan across a still of ``size`` (H, W): its top speed in output pixels per frame (the path may
    use a quarter of the shorter side, so long clips pan more slowly), the full-size pixels its crop
    may travel, and the crop's even height and width with ``margin`` pixels left free on every side."""
    height, width = size
    speed = min(max_speed, min(height, width) / 4 / (2 * frames))
    travel = int(np.ceil(2 * speed * frames)) + 2
    crop_h, crop_w = (height - travel - 2 * margin) // 2 * 2, (width - travel - 2 * margin) // 2 * 2
    if crop_h < 64 or crop_w < 64:
        raise ValueError(f"a {width}x{height} image is too small to pan {frames} frames across")
    return speed, travel, crop_h, crop_w


def _camera_path(rng: np.random.Generator, frames: int, speed: float, travel: int, margin: int = 0) -> np.ndarray:
    """The crop's top-left corner in each frame (frames, 2), in ``margin .. margin + travel``: a
    velocity of up to ``speed`` output pixels per frame that drifts a little from frame to frame."""
    velocity = rng.uniform(-speed, speed, size=2) * 2  # full-size pixels per frame
    position = np.array([travel / 2, travel / 2]) - velocity * (frames - 1) / 2
    path = np.empty((frames, 2))
    for t in range(frames):
        path[t] = np.clip(position, 0, travel) + margin
        velocity = np.clip(velocity + rng.normal(0, 0.1 * speed, size=2), -2 * speed, 2 * speed)
        position = position + velocity
    return path


def area_average(frames: np.ndarray, factor: int) -> np.ndarray:
    """``frames`` (..., H, W, C) averaged over ``factor x factor`` blocks, rounded to their integer
    dtype; rows and columns past a multiple of ``factor`` are dropped. Averaging 4 pixels halves
    noise and hides most of a lossy source's own coding artifacts."""
    h, w, c = (frames.shape[-3] // factor, frames.shape[-2] // factor, frames.shape[-1])
    if h == 0 or w == 0:
        raise ValueError(f"a {frames.shape[-2]}x{frames.shape[-3]} frame is too small to shrink {factor}x")
    blocks = frames[..., : h * factor, : w * factor, :].reshape(*frames.shape[:-3], h, factor, w, factor, c)
    mean = blocks.mean(axis=(-4, -2), dtype=np.float32)
    return np.clip(np.rint(mean), 0, np.iinfo(frames.dtype).max).astype(frames.dtype)
