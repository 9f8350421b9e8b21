"""Argument checks shared by the filters: every failure is a ``vs.Error`` naming the parameter."""
from __future__ import annotations

from collections.abc import Collection
from typing import NoReturn

import vapoursynth as vs


MIN_SIZE = (16, 16)  # (width, height): smaller frames leave the networks' 3x3 stacks nothing to see
MAX_STREAMS = 32  # frames rendered at once (num_streams): each holds its own activations


def fail(filter_name: str, message: str) -> NoReturn:
    raise vs.Error(f"vsrestore.{filter_name}: {message}")


def check_clip(
    filter_name: str,
    clip: object,
    *,
    families: Collection[int],
    integer_only: bool = False,
    min_bits: int = 8,
    max_bits: int = 16,
    min_size: tuple[int, int] = (1, 1),
    min_length: int = 1,
    need_fps: bool = False,
) -> vs.VideoNode:
    """Validate ``clip`` and return it; ``min_size`` is (width, height)."""
    if not isinstance(clip, vs.VideoNode):
        fail(filter_name, f"clip must be a VapourSynth video clip, not {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.NONE or clip.width == 0 or clip.height == 0:
        fail(filter_name, "clip must have a constant format and frame size (variable clips are not supported)")
    names = {vs.YUV: "YUV", vs.RGB: "RGB", vs.GRAY: "GRAY"}
    if fmt.color_family not in families:
        allowed = ", ".join(names[f] for f in families)
        fail(filter_name, f"clip must be {allowed}; got {fmt.name}")
    if fmt.sample_type == vs.FLOAT:
        if integer_only:
            fail(filter_name, f"clip must have integer samples of {min_bits}-{max_bits} bits; got float ({fmt.name})")
    elif not min_bits <= fmt.bits_per_sample <= max_bits:
        fail(filter_name, f"clip must have {min_bits}-{max_bits} bit samples; got {fmt.bits_per_sample} ({fmt.name})")
    if clip.width < min_size[0] or clip.height < min_size[1]:
        fail(filter_name, f"clip must be at least {min_size[0]}x{min_size[1]}; got {clip.width}x{clip.height}")
    if clip.num_frames < min_length:
        fail(filter_name, f"clip must have at least {min_length} frames; got {clip.num_frames}")
    if need_fps and clip.fps.numerator == 0:
        fail(filter_name, "clip has a variable frame rate (fps 0); set one first, e.g. with std.AssumeFPS")
    return clip


def check_int(filter_name: str, name: str, value: object, allowed: Collection[int] | range) -> int:
    """``value`` must be an int in ``allowed``."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        shown = f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else ", ".join(map(str, allowed))
        fail(filter_name, f"{name} must be one of {shown}; got {value!r}")
    return value
