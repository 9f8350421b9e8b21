"""``vsrestore.stifn``: compression-artifact removal with STIFN (7-frame windows, luma)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import vapoursynth as vs
from torch import nn

from ..bridge import (
    SlidingWindow, copy_props, frames_to_tensor, run_tiled, sample_scale, tensor_to_frame, tile_grid, windowed_node,
)
from .checks import check_clip, check_int, fail
from ..networks.stifn import STIFN_PRESETS
from .common import Runner, resolve_model, tile_arg

core = vs.core
NAME = "stifn"
TRAINED_QPS = (22, 27, 32, 37)
RADIUS = 3
MIN_SIZE = (16, 16)


def nearest_qp(qp: int) -> int:
    """The trained QP closest to ``qp`` (the lower one on a tie)."""
    return min(TRAINED_QPS, key=lambda q: (abs(q - qp), q))


def stifn(
    clip: vs.VideoNode,
    *,
    qp: int = 37,
    size: str = "r3",
    model: str | os.PathLike[str] | nn.Module | None = None,
    planes: Sequence[int] | None = None,
    device: str = "auto",
    precision: str = "fp32",
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
        qp: the QP the video was encoded at, 0..51. It picks the per-QP model: the nearest trained
            QP of 22, 27, 32, 37 (the lower on a tie; e.g. 24 uses 22, 30 uses 32).
        size: "r3" (374K parameters) or "r3l" (660K).
        model: overrides ``qp``/``size``: a shipped name, a checkpoint path or a ``torch.nn.Module``
            taking ``(B, 7, H, W)`` in [0, 1] and returning ``(B, 1, H, W)``.
        planes: planes to enhance (default ``[0]``: luma only). Other planes pass through
            unchanged. Chroma planes may be listed; they are enhanced with the luma model at their
            own size (the models were trained on luma only).
        device, precision: as for :func:`vsrestore.mstfn`.
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
    if size not in STIFN_PRESETS:
        fail(NAME, f"size must be one of {', '.join(sorted(STIFN_PRESETS))}; got {size!r}")
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
    check_int(NAME, "num_streams", num_streams, range(1, 33))
    net = resolve_model(NAME, model, "stifn", default=f"stifn_{size}_qp{nearest_qp(qp)}")
    runner = Runner(NAME, net, device, precision)

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
                lambda t: runner("forward", x[..., t.y0 : t.y1, t.x0 : t.x1])[0],
                tiles, (1, h, w), device=runner.device,
            )
            tensor_to_frame(y, out, planes=[p])

    # The template is the centre frame itself: planes not enhanced are passed through untouched.
    return windowed_node(clip, window.clips(), render, num_streams=num_streams)
