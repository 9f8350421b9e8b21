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

import numpy as np

from .data import read_frame_folder, read_image, read_raw_yuv, read_septuplet, read_video, vimeo_septuplets, yuv420_to_rgb

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v"}
RAW_SUFFIXES = {".yuv", ".i420"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
PAN_FRAMES = 24  # frames of a panned still when no max_frames is given


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


def load_sources(paths: list[str | Path], max_frames: int | None = None, shrink: int = 1) -> list[Source]:
    """Read every clip under ``paths``; ``max_frames`` caps each clip's length.

    ``shrink`` > 1 area-averages every video (files, frame folders, raw YUV) by that factor; stills
    are panned at half their size whatever it is (:func:`pan_clip`).
    """
    if shrink < 1:
        raise ValueError(f"shrink must be >= 1, not {shrink}")

    def video(name: str, frames: np.ndarray) -> Source:
        return Source(name, area_average(frames, shrink) if shrink > 1 else frames)

    sources: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path.name == "sequences" or (path / "sequences").is_dir()):
            for folder in vimeo_septuplets(path):
                sources.append(video(f"{folder.parent.name}_{folder.name}", read_septuplet(folder)[:max_frames]))
        elif path.is_dir():
            sources.append(video(path.name, read_frame_folder(path)[:max_frames]))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(video(path.stem, read_video(path, max_frames).frames))
        elif path.suffix.lower() in RAW_SUFFIXES:
            width, height, bits = raw_geometry(path)
            y, u, v = read_raw_yuv(path, width, height, bits)
            rgb = yuv420_to_rgb(y[:max_frames], u[:max_frames], v[:max_frames], bits=bits)
            peak, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
            sources.append(video(path.stem, np.rint(rgb * np.float32(peak)).astype(dtype)))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            seed = int.from_bytes(path.name.encode()[:8].ljust(8, b"_"), "little")
            sources.append(Source(f"{path.stem}_pan", pan_clip(read_image(path), max_frames or PAN_FRAMES, seed)))
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
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    # the path may use a quarter of the image's shorter side, so long clips pan more slowly
    max_speed = min(max_speed, min(height, width) / 4 / (2 * frames))
    travel = int(np.ceil(2 * max_speed * frames)) + 2  # full-size pixels the crop may move
    crop_h, crop_w = (height - travel) // 2 * 2, (width - travel) // 2 * 2
    if crop_h < 64 or crop_w < 64:
        raise ValueError(f"a {width}x{height} image is too small to pan {frames} frames across")
    velocity = rng.uniform(-max_speed, max_speed, size=2) * 2  # full-size pixels per frame
    position = np.array([travel / 2, travel / 2]) - velocity * (frames - 1) / 2
    out = np.empty((frames, crop_h // 2, crop_w // 2, 3), dtype=image.dtype)
    for t in range(frames):
        y, x = np.clip(np.rint(position), 0, travel).astype(int)
        out[t] = area_average(image[y : y + crop_h, x : x + crop_w], 2)
        velocity = np.clip(velocity + rng.normal(0, 0.1 * max_speed, size=2), -2 * max_speed, 2 * max_speed)
        position = position + velocity
    return out


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
