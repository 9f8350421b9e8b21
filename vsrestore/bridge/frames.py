"""Frames to tensors and back.

Planes are read as zero-copy numpy views (row padding handled by their strides), wrapped with
``torch.from_numpy`` and converted in a single copy into a float tensor. Results are rounded, clamped
and copied straight into the planes of the output frame. No Python loop touches a pixel.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import vapoursynth as vs

from . import cuda_transfer


def plane_view(frame: vs.VideoFrame, plane: int) -> np.ndarray:
    """The plane as a 2-D numpy view of the frame's memory (strided, no copy)."""
    return np.asarray(frame[plane])


def sample_scale(fmt: vs.VideoFormat, *, msb_bits: int | None = None) -> float:
    """Factor that maps stored samples of ``fmt`` to [0, 1].

    Integer samples of b bits are divided by 2^b - 1. With ``msb_bits`` (e.g. 16) they are first
    MSB-aligned into a ``msb_bits`` container, as bit-depth networks expect: an 8-bit v becomes
    v * 256 / 65535, not v / 255. Float samples are taken as they are.
    """
    if fmt.sample_type == vs.FLOAT:
        return 1.0
    bits = fmt.bits_per_sample
    if msb_bits is None:
        return 1.0 / ((1 << bits) - 1)
    return float(1 << (msb_bits - bits)) / ((1 << msb_bits) - 1)


def frames_to_tensor(
    frames: Sequence[vs.VideoFrame],
    *,
    planes: Sequence[int] | None = None,
    scale: float = 1.0,
    device: torch.device = torch.device("cpu"),
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Stack ``planes`` of ``frames`` into a ``(T, C, H, W)`` tensor of ``dtype`` on ``device``.

    Stored samples are multiplied by ``scale`` (see :func:`sample_scale`). All planes must have the
    same size (callers convert subsampled formats or pass luma only).
    """
    first = frames[0]
    plane_ids = list(range(first.format.num_planes)) if planes is None else list(planes)
    height, width = plane_view(first, plane_ids[0]).shape
    # Every plane is checked first: numpy would broadcast a mismatched one instead of failing.
    views = [[_checked_view(frame, plane, (height, width)) for plane in plane_ids] for frame in frames]
    if device.type == "cuda" and cuda_transfer.available():
        staging = cuda_transfer.upload_planes(frames, plane_ids, device)
    else:
        # Frame memory is read-only; numpy converts it straight into the tensor's own memory.
        staging = torch.empty((len(frames), len(plane_ids), height, width), dtype=torch.float32)
        host = staging.numpy()
        for t, row in enumerate(views):
            for c, view in enumerate(row):
                host[t, c] = view
    # Scale in float32 before any cast: 16-bit samples overflow float16 (max 65504).
    if scale != 1.0:
        staging.mul_(scale)
    return staging.to(device, dtype, non_blocking=True)


def quantize(tensor: torch.Tensor, fmt: vs.VideoFormat, *, scale: float = 1.0) -> torch.Tensor:
    """Turn a [0, 1] float tensor into stored samples of ``fmt`` (``tensor / scale`` for integers).

    Integers are rounded half to even (torch.round) and clamped to the format's range; floats keep
    their values. The result's dtype matches the plane's numpy dtype.
    """
    if fmt.sample_type == vs.FLOAT:
        return tensor.to(torch.float16 if fmt.bits_per_sample == 16 else torch.float32)
    peak = (1 << fmt.bits_per_sample) - 1
    values = torch.round(tensor.float() / scale).clamp_(0, peak)
    return values.to(torch.uint8 if fmt.bytes_per_sample == 1 else torch.uint16)


def tensor_to_frame(
    tensor: torch.Tensor,
    frame: vs.VideoFrame,
    *,
    planes: Sequence[int] | None = None,
    scale: float | None = None,
) -> None:
    """Write a ``(C, H, W)`` tensor in [0, 1] into ``planes`` of the writable ``frame``.

    ``scale`` is the factor used to read such samples (default: :func:`sample_scale` of the frame's
    format), so that writing inverts reading exactly.
    """
    fmt = frame.format
    plane_ids = list(range(fmt.num_planes)) if planes is None else list(planes)
    if tensor.dim() != 3 or tensor.shape[0] != len(plane_ids):
        raise ValueError(f"expected a (C={len(plane_ids)}, H, W) tensor, got {tuple(tensor.shape)}")
    samples = quantize(tensor, fmt, scale=sample_scale(fmt) if scale is None else scale)
    views = [_checked_view(frame, plane, tuple(tensor.shape[1:])) for plane in plane_ids]
    if samples.device.type == "cuda" and cuda_transfer.available():
        cuda_transfer.download_planes(samples, frame, plane_ids)
        return
    samples = samples.cpu()
    for c, view in enumerate(views):
        torch.from_numpy(view).copy_(samples[c])

def _checked_view(frame: vs.VideoFrame, plane: int, shape: tuple[int, ...]) -> np.ndarray:
    """The plane's view, refusing a size mismatch that numpy or torch would silently broadcast."""
    view = plane_view(frame, plane)
    if view.shape != shape:
        raise ValueError(f"plane {plane} is {view.shape[1]}x{view.shape[0]}, expected {shape[1]}x{shape[0]}")
    return view
