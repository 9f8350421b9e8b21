"""``vsrestore.mstfn``: bit-depth enhancement with MSTFN (5-frame windows, Stage-I reuse)."""
from __future__ import annotations

import os
import warnings

import torch
import vapoursynth as vs
from torch import nn

from ..bridge import (
    BoundedCache,
    SlidingWindow,
    Tile,
    copy_props,
    frames_to_tensor,
    rgb_round_trip,
    run_tiled,
    tensor_to_frame,
    tile_grid,
    windowed_node,
)
from ..models import ModelInfo
from ..models.shipped import find
from .checks import MAX_STREAMS, MIN_SIZE, check_clip, check_int, fail
from .common import Backend, Device, Precision, Runner, output_format, resolve_model, shipped_default, tile_arg

core = vs.core
NAME = "mstfn"
BGR = (2, 1, 0)  # the authors read frames with OpenCV


def mstfn(
    clip: vs.VideoNode,
    *,
    in_bits: int | None = None,
    out_depth: int = 16,
    model: str | os.PathLike[str] | nn.Module | None = None,
    device: Device = "auto",
    precision: Precision = "auto",
    backend: Backend = "torch",
    tile: int | tuple[int, int] | None = None,
    overlap: int = 64,
    num_streams: int = 1,
    stage1_cache: bool = True,
) -> vs.VideoNode:
    """Bit-depth enhancement: banded low-bit video to 10/12/16-bit or float output without false contours.

    Each output frame is restored from the five source frames t-2..t+2 (repeated at the clip's edges
    and never taken across a scene cut: see :func:`vsrestore.scene_changes`).

    Args:
        clip: YUV or RGB, integer 8-16 bit, constant format, at least 16x16.
        in_bits: significant bits of the source, 1..bit depth (default: the bit depth). Samples are
            truncated to their top ``in_bits`` bits and MSB-aligned in 16 bits, the contract of the
            authors' checkpoints (an 8-bit v enters as v*256/65535).
        out_depth: 10, 12 or 16 (integer) or 32 (float). Family and subsampling are kept.
        model: a shipped model name, a checkpoint file (e.g. the authors' ``8_12/netG_weights_epo61.pth``)
            or a ``torch.nn.Module`` with MSTFN's ``stage1``/``fuse`` methods.
        device: "auto", "cpu", "cuda" or "cuda:N".
        precision: "auto" (default): where the device computes bfloat16 natively (AMX-BF16 or
            AVX512-BF16 CPUs, Ampere and later GPUs), Stage I in fp32 and the fusion in bf16
            autocast: within 0.1 (8-bit model) to 1.1 (4-bit) 10-bit codes of fp32 on the shipped
            models, at about 0.6x its time; fp32 elsewhere. "fp32"; "bf16" (all of it: up to 1.5 to
            4.3 10-bit codes from fp32) on CUDA or such a CPU, refused elsewhere; "fp16" on CUDA.
        backend: "torch" (default) or "openvino" (the CPU only; ``pip install openvino``): the
            network compiled by OpenVINO as two graphs, Stage I and the fusion, so Stage-I reuse
            holds; compiled models are cached on disk (``$XDG_CACHE_HOME/vsrestore/openvino``).
        tile: None (whole frames) or a tile size (int or (width, height), >= 16) to bound memory.
        overlap: context pixels around each tile; >= the network's receptive radius (59 for the
            authors' config) makes tiled output equal untiled output up to float rounding.
        num_streams: frames rendered at once (one VapourSynth node each). On the CPU each stream
            runs torch on ``torch.get_num_threads() // num_streams`` threads (at least 1), so
            streams x threads = cores.
        stage1_cache: reuse Stage-I results across neighbouring frames (same output, about 2x faster).

    Colour: YUV goes to RGB at its own bit depth (frame props, with vsrestore's documented defaults),
    the network runs in B,G,R order, and the result returns through float RGB to YUV at ``out_depth``
    with every source prop restored. RGB integer output keeps the MSB-aligned scale (identity maps an
    8-bit v to v << (out_depth - 8)); float output maps the source's full scale to 1.0.
    """
    check_clip(NAME, clip, families=(vs.YUV, vs.RGB), integer_only=True, min_size=MIN_SIZE)
    bits = clip.format.bits_per_sample
    in_bits = bits if in_bits is None else check_int(NAME, "in_bits", in_bits, range(1, bits + 1))
    check_int(NAME, "out_depth", out_depth, (10, 12, 16, 32))
    tile_size, overlap = tile_arg(NAME, tile, overlap)
    check_int(NAME, "num_streams", num_streams, range(1, MAX_STREAMS + 1))
    if not isinstance(stage1_cache, bool):
        fail(NAME, f"stage1_cache must be True or False; got {stage1_cache!r}")
    loaded = resolve_model(NAME, model, "mstfn", lambda: shipped_default(
        NAME, "mstfn", f"in_bits={in_bits}", find("mstfn", in_bits=in_bits)))
    net = loaded.network
    if not (hasattr(net, "stage1") and hasattr(net, "fuse")):
        fail(NAME, f"model must be an MSTFN network (with stage1 and fuse); got {type(net).__name__}")
    _check_contract(loaded.info, in_bits)
    runner = Runner(NAME, loaded, device, precision, num_streams=num_streams, backend=backend)

    # YUV goes to RGB at its own depth: the network expects quantised input.
    trip = rgb_round_trip(clip, core.query_video_format(vs.RGB, vs.INTEGER, bits, 0, 0).id, output_format(clip, out_depth))
    rgb, rgb_out_fmt = trip.rgb, trip.work_format
    # Network values are v16/65535; the source's full scale ((2^b - 1) << (16 - b)) is 1.0 in float.
    msb = float(1 << (16 - bits))
    keep_mask = ~((1 << (16 - in_bits)) - 1) & 0xFFFF  # truncation to in_bits, MSB-aligned
    float_scale = 65535.0 / (((1 << bits) - 1) * msb)
    float_out = rgb_out_fmt.sample_type == vs.FLOAT

    window = SlidingWindow(rgb, radius=2)
    tiles = tile_grid(clip.height, clip.width, tile_size, overlap)
    cache: BoundedCache[torch.Tensor] = BoundedCache(
        (num_streams + 2) * len(tiles) if stage1_cache else 0
    )

    def render(n: int, frames: list[vs.VideoFrame], out: vs.VideoFrame) -> None:
        win = window.resolve(n, frames)
        x = frames_to_tensor(win.frames, planes=BGR, device=runner.device)  # (5, 3, H, W), stored values
        x = _truncate(x, msb, keep_mask) * (1.0 / 65535.0)
        triples = [win.indices[k : k + 3] for k in range(3)]

        def one_tile(t: Tile) -> torch.Tensor:
            xt = x[:, :, t.y0 : t.y1, t.x0 : t.x1]
            groups = [
                cache.get_or_compute(
                    (triple, t), lambda k=k: runner("stage1", xt[k : k + 1], xt[k + 1 : k + 2], xt[k + 2 : k + 3], frame=n)
                )
                for k, triple in enumerate(triples)
            ]
            return runner("fuse", *groups, xt[2:3], frame=n)[0]

        y = run_tiled(one_tile, tiles, (3, clip.height, clip.width), device=runner.device)
        y = y[list(BGR)]
        if float_out:
            tensor_to_frame((y * float_scale).clamp_(0.0, 1.0), out)
        else:
            tensor_to_frame(y, out, scale=(1 << (16 - out_depth)) / 65535.0)
        copy_props(win.centre, out)

    template = core.std.BlankClip(rgb, format=rgb_out_fmt.id, keep=True)
    node = windowed_node(template, window.clips(), render, num_streams=num_streams)
    return core.std.CopyFrameProps(trip.back(node), clip)


def _truncate(x: torch.Tensor, msb: float, keep_mask: int) -> torch.Tensor:
    """MSB-align stored samples into 16 bits and keep their top bits (float-exact for 16-bit ints)."""
    v16 = (x * msb).to(torch.int32) & keep_mask
    return v16.to(torch.float32)


def _check_contract(info: ModelInfo, in_bits: int) -> None:
    want = info.in_bits
    if want is not None and want != in_bits:
        warnings.warn(
            f"vsrestore.mstfn: the model was trained for {want} significant input bits "
            f"(in_bits={want}), but in_bits={in_bits}; results may be poor",
            stacklevel=3,
        )
