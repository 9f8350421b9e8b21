"""Numpy arrays to VapourSynth clips and back, for evaluation through the public filters; and a
synthetic clip with scene cuts for benchmarks and tests of rendering."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from fractions import Fraction

import numpy as np
import vapoursynth as vs

from ..training.data import YUVFrames

core = vs.core


def _from_planes(planes: list[np.ndarray], fmt: int, fps: Fraction, props: dict) -> vs.VideoNode:
    t, h, w = planes[0].shape
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=t, fpsnum=fps.numerator, fpsden=fps.denominator)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, plane in enumerate(planes):
            np.asarray(out[p])[:] = plane[n]
        for key, value in props.items():
            out.props[key] = value
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def rgb_clip(frames: np.ndarray, fps: Fraction = Fraction(25)) -> vs.VideoNode:
    """(T, H, W, 3) uint8 -> RGB24, uint16 -> RGB48, float32 -> RGBS."""
    fmt = {np.dtype(np.uint8): vs.RGB24, np.dtype(np.uint16): vs.RGB48, np.dtype(np.float32): vs.RGBS}[frames.dtype]
    return _from_planes([frames[..., c] for c in range(3)], fmt, fps, {"_Matrix": 0, "_Range": 1})


def yuv420_clip(planes: YUVFrames, fps: Fraction = Fraction(25)) -> vs.VideoNode:
    """8-bit 4:2:0 planes -> YUV420P8, tagged BT.601 limited range (as the degradations make them)."""
    return _from_planes(list(planes), vs.YUV420P8, fps, {"_Matrix": 6, "_Range": 0, "_ChromaLocation": 0})


def scene_cut_clip(
    length: int, cuts: Collection[int], width: int, height: int, fps: Fraction, props: Mapping[str, int] | None = None
) -> vs.VideoNode:
    """A YUV420P8 test pattern whose scenes start at the frames in ``cuts``, for benchmarks and tests
    of rendering at scene cuts: each scene a random texture of its own (seeded by the scene's number)
    panning 2 pixels a frame in luma and 1 in chroma, on a luma level of its own; ``props`` are set
    on every frame."""
    blank = core.std.BlankClip(
        format=vs.YUV420P8, width=width, height=height, length=length, fpsnum=fps.numerator, fpsden=fps.denominator
    )
    starts, extra = list(cuts), dict(props or {})

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        scene = sum(c <= n for c in starts)
        tex = np.random.default_rng(scene).integers(0, 40, size=(height, width + 2 * length))
        for p in range(3):
            a = np.asarray(out[p])
            h, w = a.shape
            a[:] = tex[:h, 2 * n : 2 * n + w] + (40 + 70 * scene) % 200 if p == 0 else 108 + tex[:h, n : n + w]
        for key, value in extra.items():
            out.props[key] = value
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def to_array(clip: vs.VideoNode) -> np.ndarray:
    """All frames as (T, H, W, C) (planes must share a size) or a list-free (T, H, W) for one plane."""
    frames = [np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)], axis=-1) for f in clip.frames()]
    return np.stack(frames)


def plane_array(clip: vs.VideoNode, plane: int) -> np.ndarray:
    """One plane of every frame, (T, H, W)."""
    return np.stack([np.asarray(f[plane]).copy() for f in clip.frames()])
