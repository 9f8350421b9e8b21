"""``vsrestore.stifn``: compression-artifact removal with STIFN (7-frame windows, luma)."""
from __future__ import annotations

import os
import typing
from collections.abc import Sequence
from typing import Literal

import vapoursynth as vs
from torch import nn

from ..bridge import (
    SlidingWindow, copy_props, frames_to_tensor, run_tiled, sample_scale, tensor_to_frame, tile_grid, windowed_node,
)
from ..models import get_arch
from ..models.shipped import find
from .checks import MAX_STREAMS, MIN_SIZE, check_clip, check_int, fail
from .common import Backend, Device, Precision, Runner, resolve_model, shipped_default, tile_arg

core = vs.core
NAME = "stifn"
RADIUS = 3
Size = Literal["lite", "r3", "r3l"]


# A model serves QPs at most this far from its own: half the 5-QP spacing of the per-QP models
# (22, 27, 32, 37). Further away it harms: stifn_qp37 on QP 27 video lost 1.54 dB PSNR-Y against the
# decoded input (held-out clips, docs/weights/stifn_qp37.md).
MAX_QP_DISTANCE = 2


def nearest_qp(qp: int, trained: Sequence[int]) -> int:
    """The trained QP closest to ``qp`` (the lower one on a tie)."""
    return min(trained, key=lambda q: (abs(q - qp), q))


def default_model(qp: int, size: str) -> str:
    """The shipped STIFN of ``size`` trained at the QP nearest ``qp``, if within
    :data:`MAX_QP_DISTANCE` of it."""
    entries = [e for e in find("stifn", preset=size) if isinstance(e.contract.get("qp"), int)]
    if entries:
        trained = sorted({e.contract["qp"] for e in entries})
        best = nearest_qp(qp, trained)
        entries = [e for e in entries if e.contract["qp"] == best]
        if abs(best - qp) > MAX_QP_DISTANCE:
            fail(NAME, f"no shipped STIFN model of size={size!r} within {MAX_QP_DISTANCE} of qp={qp} (trained "
                       f"QPs: {', '.join(map(str, trained))}; a model used {abs(best - qp)} QPs from its own can "
                       f"make the video worse); pass model= to use one anyway, e.g. model='{entries[0].name}'")
    return shipped_default(NAME, "stifn", f"size={size!r} (any QP)", entries)


def stifn(
    clip: vs.VideoNode,
    *,
    qp: int = 37,
    size: Size = "lite",
    model: str | os.PathLike[str] | nn.Module | None = None,
    planes: Sequence[int] | None = None,
    device: Device = "auto",
    precision: Precision = "auto",
    backend: Backend = "torch",
    tile: int | tuple[int, int] | None = None,
    overlap: int = 24,
    num_streams: int = 1,
) -> vs.VideoNode:
    """Remove compression artifacts (blocking, ringing, flicker) of HEVC/H.264 video.

    STIFN restores each frame from the 7 frames t-3..t+3 (repeated at the clip's edges, never taken
    across a scene cut), fusing them with 3D convolutions. vsrestore's STIFN is a re-design under
    the published contract (the authors released no code or weights).

    Args:
        clip: YUV or GRAY, integer 8-16 bit. Higher depths are scaled to [0, 1], not truncated. RGB is
            refused: convert to YUV first (e.g. ``core.resize.Bicubic(clip, format=vs.YUV444P16,
            matrix_s="709")``), since the models learnt luma.
        qp: the QP the video was encoded at, 0..51. It picks the per-QP model: the shipped model
            trained at the nearest QP, if it is at most 2 away (with 22, 27, 32 and 37 shipped, 24
            uses 22 and 30 uses 32); further away a model can make the video worse, so that is a
            ``vs.Error`` unless ``model=`` names one.
        size: the preset of the shipped model: "lite" (ours, 368K parameters, about half the
            cost of r3), "r3" (the paper's 374K) or "r3l" (660K).
        model: overrides ``qp``/``size``: a shipped name, a checkpoint path or a ``torch.nn.Module``
            taking ``(B, 7, H, W)`` in [0, 1] and returning ``(B, 1, H, W)``.
        planes: planes to enhance (default ``[0]``: luma only). Other planes pass through
            unchanged. Chroma planes may be listed; they are enhanced with the luma model at their
            own size (the models were trained on luma only).
        device: as for :func:`vsrestore.mstfn`.
        precision: "auto" (default): bf16 on CUDA (fp16 on GPUs without bf16) and on CPUs that
            compute bfloat16 natively (AMX-BF16, AVX512-BF16), else fp32; or "fp32", "fp16"
            (CUDA), "bf16" (CUDA or such a CPU).
        backend: "torch" (default) or "openvino" (the CPU only; ``pip install openvino``).
        tile, overlap: tiled inference; ``overlap`` >= 18 (the r3l receptive radius) keeps tiled
            output equal to untiled output up to rounding.
        num_streams: frames rendered at once.

    Frame count, rate, format and every frame prop are kept.
    """
    if isinstance(clip, vs.VideoNode) and clip.format is not None and clip.format.color_family == vs.RGB:
        fail(NAME, "clip is RGB; STIFN enhances luma: convert to YUV first, e.g. "
                   "core.resize.Bicubic(clip, format=vs.YUV444P16, matrix_s='709')")
    check_clip(NAME, clip, families=(vs.YUV, vs.GRAY), integer_only=True, min_size=MIN_SIZE)
    check_int(NAME, "qp", qp, range(0, 52))
    if size not in get_arch("stifn").presets or size == "tiny":
        fail(NAME, f"size must be one of {', '.join(typing.get_args(Size))}; got {size!r}")
    num_planes = clip.format.num_planes
    plane_list = [0] if planes is None else planes
    if (
        not isinstance(plane_list, (list, tuple))
        or not plane_list
        or len(set(plane_list)) != len(plane_list)
        or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < num_planes for p in plane_list)
    ):
        fail(NAME, f"planes must be a list of distinct plane numbers in 0..{num_planes - 1}; got {planes!r}")
    tile_size, overlap = tile_arg(NAME, tile, overlap)
    check_int(NAME, "num_streams", num_streams, range(1, MAX_STREAMS + 1))
    runner = Runner(NAME, resolve_model(NAME, model, "stifn", lambda: default_model(qp, size)), device, precision,
                    num_streams=num_streams, backend=backend)

    window = SlidingWindow(clip, radius=RADIUS)
    fmt = clip.format
    grids = {}
    for p in plane_list:
        w = clip.width >> (fmt.subsampling_w if p else 0)
        h = clip.height >> (fmt.subsampling_h if p else 0)
        grids[p] = (h, w, tile_grid(h, w, tile_size, overlap))

    def render(n: int, frames: list[vs.VideoFrame], out: vs.VideoFrame) -> None:
        win = window.resolve(n, frames)
        copy_props(win.centre, out)
        for p in plane_list:
            h, w, tiles = grids[p]
            x = frames_to_tensor(win.frames, planes=[p], scale=sample_scale(fmt), device=runner.device)[:, 0][None]
            y = run_tiled(
                lambda t: runner("forward", x[..., t.y0 : t.y1, t.x0 : t.x1], frame=n)[0],
                tiles, (1, h, w), device=runner.device,
            )
            tensor_to_frame(y, out, planes=[p])

    # The template is the centre frame itself: planes not enhanced are passed through untouched.
    return windowed_node(clip, window.clips(), render, num_streams=num_streams)
