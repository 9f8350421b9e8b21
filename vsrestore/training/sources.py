"""Training and evaluation sources: any path the readers understand, as RGB frames in memory.

A path may be a Vimeo-style septuplet tree (a folder holding or named ``sequences``), a folder of
PNG frames, a video file (decoded with PyAV), or a raw planar YUV file whose name gives its size
and depth, e.g. ``cars_320x240_30f.i420`` or ``sparks_480x270_5f_yuv420p10le.yuv``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import read_frame_folder, read_raw_yuv, read_septuplet, read_video, vimeo_septuplets, yuv420_to_rgb

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v"}
RAW_SUFFIXES = {".yuv", ".i420"}


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


def load_sources(paths: list[str | Path], max_frames: int | None = None) -> list[Source]:
    """Read every clip under ``paths``; ``max_frames`` caps each clip's length."""
    sources: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path.name == "sequences" or (path / "sequences").is_dir()):
            for folder in vimeo_septuplets(path):
                sources.append(Source(f"{folder.parent.name}_{folder.name}", read_septuplet(folder)[:max_frames]))
        elif path.is_dir():
            sources.append(Source(path.name, read_frame_folder(path)[:max_frames]))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(Source(path.stem, read_video(path, max_frames).frames))
        elif path.suffix.lower() in RAW_SUFFIXES:
            width, height, bits = raw_geometry(path)
            y, u, v = read_raw_yuv(path, width, height, bits)
            rgb = yuv420_to_rgb(y[:max_frames], u[:max_frames], v[:max_frames], bits=bits)
            peak, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
            sources.append(Source(path.stem, np.rint(rgb * np.float32(peak)).astype(dtype)))
        else:
            raise ValueError(f"{path}: not a folder, video ({', '.join(sorted(VIDEO_SUFFIXES))}) or raw YUV file")
    return sources
