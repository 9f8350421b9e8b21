"""``vsrestore.msitf``: space-time super-resolution, 4x width and height and twice the frame rate."""
from __future__ import annotations

import os
from typing import Literal

import torch
import vapoursynth as vs
from torch import nn

from ..bridge import frames_to_tensor, rgb_round_trip, run_tiled, sample_scale, tensor_to_frame, tile_grid
from ..bridge.colour import COLOUR_PROPS
from ..bridge.spacetime import SpaceTimeWindow, doubled_rate_template, spacetime_node
from ..models.shipped import find
from .checks import MAX_STREAMS, MIN_SIZE, check_clip, check_int, fail
from .common import Backend, Device, Precision, Runner, output_format, resolve_model, shipped_default, tile_arg

core = vs.core
NAME = "msitf"
SCALE = 4


def msitf(
    clip: vs.VideoNode,
    *,
    model: str | os.PathLike[str] | nn.Module | None = None,
    length: Literal["2n-1", "2n"] = "2n-1",
    out_depth: int | None = None,
    device: Device = "auto",
    precision: Precision = "auto",
    backend: Backend = "torch",
    tile: int | tuple[int, int] | None = None,
    overlap: int = 16,
    num_streams: int = 1,
) -> vs.VideoNode:
    """Space-time super-resolution: 4x width and height and twice the frame rate in one node.

    Output frame 2s is source frame s upscaled; output 2s+1 is the interpolated midpoint between
    source frames s and s+1. The network sees windows of 4 source frames (stride 3) and makes 7
    outputs from each (the window length is the model's ``config.input_frames``: 4 for the shipped
    and the authors' models); each window is computed once and serves its outputs from a bounded cache.

    Args:
        clip: RGB or YUV, integer (8-16 bit) or float, constant format, frame size at least 16x16,
            constant frame rate. YUV goes to RGB with its props (vsrestore's documented defaults
            fill in missing ones) and back.
        model: a shipped model name, a checkpoint path, or a ``torch.nn.Module`` taking
            ``(B, 4, 3, h, w)`` RGB in [0, 1] and returning ``(B, 7, 3, 4h, 4w)``.
        length: ``"2n-1"`` (default, the paper's: N source frames give 2N-1) or ``"2n"``, which
            appends a copy of the last output so the clip lasts exactly as long as the source.
        out_depth: output bits (8..16) or 32 for float; default: the input's.
        device, precision: as for :func:`vsrestore.stifn` ("auto": bf16 where the device computes it).
        backend: "torch" (default) or "openvino" (the CPU only; ``pip install openvino``).
        tile, overlap: tiled inference on the low-resolution input. The window attention and the
            deformable alignment see far, so tiled output approximates untiled output (closer
            with more overlap) rather than matching it.
        num_streams: output frames rendered at once.

    Frame rate: exactly twice the source's (24000/1001 becomes 48000/1001); every output frame
    keeps its source frame's props with half its duration.

    Scene cuts (``_SceneChangeNext``/``_SceneChangePrev``, see :func:`vsrestore.scene_changes`):
    windows restart at a cut and never mix two scenes; the midpoint between the last frame of a
    scene and the first of the next is not interpolated: it repeats the last frame of the earlier
    scene (upscaled). Scenes shorter than a window repeat their last frame to fill it.
    """
    check_clip(NAME, clip, families=(vs.YUV, vs.RGB), min_size=MIN_SIZE, need_fps=True)
    if length not in ("2n-1", "2n"):
        fail(NAME, f'length must be "2n-1" or "2n"; got {length!r}')
    fmt = clip.format
    if out_depth is not None:
        check_int(NAME, "out_depth", out_depth, (*range(8, 17), 32))
    tile_size, overlap = tile_arg(NAME, tile, overlap)
    check_int(NAME, "num_streams", num_streams, range(1, MAX_STREAMS + 1))
    loaded = resolve_model(NAME, model, "msitf", lambda: shipped_default(NAME, "msitf", "x4 / 2x fps", find("msitf")))
    net = loaded.network
    runner = Runner(NAME, loaded, device, precision, num_streams=num_streams, backend=backend)

    # Default: the input's own format (float16 stays float16, not 16-bit integer).
    trip = rgb_round_trip(clip, vs.RGBS, fmt if out_depth is None else output_format(clip, out_depth))
    rgb, rgb_out_fmt = trip.rgb, trip.work_format
    width, height = clip.width * SCALE, clip.height * SCALE
    tiles = tile_grid(clip.height, clip.width, tile_size, overlap)
    # Frames per network call: the network's own (4 for every shipped MSITF); a plain module
    # without a config is taken to follow the documented contract, 4 in and 7 out.
    window = int(getattr(getattr(net, "config", None), "input_frames", 4))

    def infer(win: SpaceTimeWindow) -> torch.Tensor:
        x = frames_to_tensor(win.frames, scale=sample_scale(rgb.format), device=runner.device)  # (window, 3, h, w)
        y = run_tiled(
            lambda t: runner("forward", x[None, :, :, t.y0 : t.y1, t.x0 : t.x1], frame=win.m)[0],
            tiles, (2 * window - 1, 3, height, width), scale=SCALE, device=runner.device,
        )
        return y.clamp_(0.0, 1.0)

    template = doubled_rate_template(rgb, rgb_out_fmt.id, width, height, length)
    node = spacetime_node(
        rgb, template, infer, lambda out, frame: tensor_to_frame(out, frame), window=window, length=length,
        num_streams=num_streams,
    )
    if trip.colour is None:
        return node
    # Every other prop came through the RGB round trip; the colour ones are the source's own.
    aligned = core.std.Interleave([clip, clip], modify_duration=False)[: node.num_frames]
    return core.std.CopyFrameProps(trip.back(node), aligned, props=list(COLOUR_PROPS))
