"""Host<->CUDA plane copies straight from VapourSynth frame memory, through CuPy.

Each plane is copied with one pitched ``cudaMemcpy2DAsync`` from the frame's pointer and stride into
a dense device buffer (no numpy intermediate), and handed to torch through DLPack; results go back
the same way into the output frame. The copies run on torch's current stream and are synchronised
before the frame can be released.

Not verified on a GPU yet: no machine of this project has one. The geometry (pointers, pitches,
byte widths) is computed by :func:`plane_geometry`, which the tests check on the CPU against a host
memcpy that uses exactly the same numbers.
"""
from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import vapoursynth as vs

_HOST_TO_DEVICE = 1  # cudaMemcpyKind values
_DEVICE_TO_HOST = 2


@dataclass(frozen=True)
class PlaneGeometry:
    """Where a plane lives in host memory and how a 2-D copy must walk it."""

    pointer: int
    pitch: int  # bytes from one row to the next in the frame (row padding included)
    row_bytes: int  # bytes of real samples in a row
    height: int
    dtype: np.dtype


def plane_geometry(frame: vs.VideoFrame, plane: int, *, write: bool = False) -> PlaneGeometry:
    """Pointer, pitch and sizes of ``plane`` for a pitched copy."""
    fmt = frame.format
    ptr = frame.get_write_ptr(plane) if write else frame.get_read_ptr(plane)
    width = frame.width >> (fmt.subsampling_w if plane else 0)
    height = frame.height >> (fmt.subsampling_h if plane else 0)
    return PlaneGeometry(
        pointer=int(ptr.value or 0),
        pitch=frame.get_stride(plane),
        row_bytes=width * fmt.bytes_per_sample,
        height=height,
        dtype=np.asarray(frame[plane]).dtype,
    )


def host_copy_2d(dst: int, dst_pitch: int, src: int, src_pitch: int, row_bytes: int, height: int) -> None:
    """CPU twin of cudaMemcpy2D with the same argument meaning (used to test the geometry)."""
    for row in range(height):
        ctypes.memmove(dst + row * dst_pitch, src + row * src_pitch, row_bytes)


@functools.cache
def available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    try:
        import cupy  # noqa: F401  (optional dependency)

        return bool(cupy.cuda.is_available())
    except Exception:  # ImportError, or a CuPy built for a CUDA this machine lacks
        return False


def _stream(device: torch.device):
    import cupy

    return cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)


def upload_planes(
    frames: Sequence[vs.VideoFrame], planes: Sequence[int], device: torch.device
) -> torch.Tensor:
    """Copy ``planes`` of ``frames`` to ``device``: a ``(T, C, H, W)`` float32 tensor of the stored
    sample values (not yet scaled)."""
    import cupy

    geoms = [[plane_geometry(f, p) for p in planes] for f in frames]
    g0 = geoms[0][0]
    width = g0.row_bytes // g0.dtype.itemsize
    with cupy.cuda.Device(device.index or 0):
        stream = _stream(device)
        buf = cupy.empty((len(frames), len(planes), g0.height, width), dtype=g0.dtype)
        for t, row in enumerate(geoms):
            for c, g in enumerate(row):
                dst = buf[t, c]
                cupy.cuda.runtime.memcpy2DAsync(
                    dst.data.ptr, g.row_bytes, g.pointer, g.pitch, g.row_bytes, g.height,
                    _HOST_TO_DEVICE, stream.ptr,
                )
        # The frames may be freed as soon as we return: the copies must be complete.
        stream.synchronize()
        if buf.dtype == np.uint16:
            # DLPack support for unsigned 16-bit differs between torch releases; int16 carries the
            # same bits everywhere, and the mask restores the unsigned values.
            return (torch.from_dlpack(buf.view(np.int16)).to(torch.int32) & 0xFFFF).to(torch.float32)
        return torch.from_dlpack(buf).to(torch.float32)


def download_planes(samples: torch.Tensor, frame: vs.VideoFrame, planes: Sequence[int]) -> None:
    """Copy a ``(C, H, W)`` device tensor of stored samples into ``planes`` of ``frame``."""
    import cupy

    device = samples.device
    with cupy.cuda.Device(device.index or 0):
        stream = _stream(device)
        samples = samples.contiguous()
        if samples.dtype == torch.uint16:  # see upload_planes
            samples = samples.view(torch.int16)
        src = cupy.from_dlpack(samples)
        for c, plane in enumerate(planes):
            g = plane_geometry(frame, plane, write=True)
            cupy.cuda.runtime.memcpy2DAsync(
                g.pointer, g.pitch, src[c].data.ptr, g.row_bytes, g.row_bytes, g.height,
                _DEVICE_TO_HOST, stream.ptr,
            )
        stream.synchronize()
