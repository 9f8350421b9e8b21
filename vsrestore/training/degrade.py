"""Degradations that turn ground truth into network inputs; each is deterministic.

- bit depth (MSTFN): :func:`truncate_bits`, :func:`to_msb16`, and :func:`high_bit_from_8bit` to make
  ground truth above 8 bits from 8-bit footage; :func:`significant_bits` measures the result;
- compression (STIFN): :func:`encode_decode` at a fixed QP in a low-delay P configuration, with an
  optional on-disk cache;
- space and time (MSITF): :func:`bd_downsample`, :func:`bicubic_downsample`,
  :func:`temporal_subsample`.

Spatial functions take numpy arrays laid out (..., H, W, C) (channels last, as the readers of
:mod:`vsrestore.training.data` return them; pass ``x[..., None]`` for a single plane) and compute in
float64 with torch; they return float64 for float64 input and float32 otherwise, unrounded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import torch
import torch.nn.functional as F

from .data import YUVFrames, video_frame_planes

log = logging.getLogger(__name__)

FramesT = TypeVar("FramesT", np.ndarray, torch.Tensor, Sequence)

# codec name -> (encoder, decoder, option carrying the encoder's own parameters)
_CODECS = {"x265": ("libx265", "hevc", "x265-params"), "x264": ("libx264", "h264", "x264-params")}


# --------------------------------------------------------------------------------------------------
# bit depth


def _check_unsigned(x: np.ndarray, container_bits: int) -> None:
    if x.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16, got {x.dtype}")
    if not 1 <= container_bits <= x.dtype.itemsize * 8:
        raise ValueError(f"container_bits {container_bits} does not fit {x.dtype}")


def truncate_bits(x: np.ndarray, container_bits: int, keep_bits: int) -> np.ndarray:
    """Keep the ``keep_bits`` most significant of ``container_bits`` bits: ``floor(v / 2^q) * 2^q``.

    ``q = container_bits - keep_bits``; the result stays MSB-aligned in the same dtype, e.g. 16-bit
    0xABCD with 4 kept bits is 0xA000 (the MSTFN low-bit-depth input).
    """
    x = np.asarray(x)
    _check_unsigned(x, container_bits)
    if not 1 <= keep_bits <= container_bits:
        raise ValueError(f"keep_bits must be 1..{container_bits}, not {keep_bits}")
    q = x.dtype.type(container_bits - keep_bits)
    return (x >> q) << q


def to_msb16(x8: np.ndarray) -> np.ndarray:
    """uint8 -> uint16 ``v << 8`` (8 significant bits, MSB-aligned)."""
    x8 = np.asarray(x8)
    if x8.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {x8.dtype}")
    return x8.astype(np.uint16) << np.uint16(8)


def high_bit_from_8bit(frames_uint8: np.ndarray, factor: int = 2) -> np.ndarray:
    """Ground truth above 8 bits from 8-bit frames (..., H, W, C) by area down-sampling.

    Each ``factor x factor`` block becomes ``round(mean * 256)`` as uint16, computed exactly in
    integers: the mean of 4 values has 1021 possible levels, i.e. 10 significant bits (factor 3:
    about 11). Rows and columns past a multiple of ``factor`` are dropped.
    """
    x = np.asarray(frames_uint8)
    if x.dtype != np.uint8 or x.ndim < 3:
        raise ValueError(f"expected uint8 (..., H, W, C), got {x.dtype} {x.shape}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, not {factor}")
    h, w = x.shape[-3] // factor, x.shape[-2] // factor
    if h == 0 or w == 0:
        raise ValueError(f"factor {factor} does not fit frames of shape {x.shape}")
    x = x[..., : h * factor, : w * factor, :]
    blocks = x.reshape(*x.shape[:-3], h, factor, w, factor, x.shape[-1])
    total = blocks.sum(axis=(-4, -2), dtype=np.uint32)
    n = factor * factor
    return ((total * 256 + n // 2) // n).astype(np.uint16)  # round half up


def significant_bits(x: np.ndarray, container_bits: int | None = None) -> int:
    """Precision of MSB-aligned data: ``container_bits`` minus the low bits 0 in every sample.

    ``container_bits`` defaults to the dtype's size. :func:`to_msb16` output gives 8, 2x2
    :func:`high_bit_from_8bit` output 10. All-zero input gives 0. Data scaled by replication
    (``v * 257``) is not detected as 8-bit: only zero low bits count.
    """
    x = np.asarray(x)
    bits = container_bits if container_bits is not None else x.dtype.itemsize * 8
    used = int(np.bitwise_or.reduce(x.ravel())) if x.size else 0
    if used == 0:
        return 0
    trailing_zeros = (used & -used).bit_length() - 1
    return bits - trailing_zeros


# --------------------------------------------------------------------------------------------------
# compression


def encoder_options(codec: str, qp: int, preset: str = "medium") -> tuple[str, dict[str, str]]:
    """PyAV encoder name and options for a fixed-QP, low-delay P encode.

    Every frame gets exactly ``qp`` (``ipratio=1:pbratio=1``; the encoders would otherwise code the
    I frame about 3 QP finer), there are no B frames and a single I frame (infinite GOP, scene-cut
    detection off), and nothing modulates the QP inside a frame or from the lookahead (adaptive
    quantisation, cu-tree/mb-tree off). ``tune=psnr`` also drops psycho-visual RD tuning, which
    keeps the encoder closer to the MSE-driven HM reference encoder of compression-artifact papers
    (HM's per-frame QP offsets in its LDP configuration are not reproduced). One thread, so output
    is deterministic and cheap to cache; parallelise across clips instead.
    """
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {sorted(_CODECS)}, not {codec!r}")
    if not 0 <= qp <= 51:
        raise ValueError(f"qp must be 0..51, not {qp}")
    encoder, _, key = _CODECS[codec]
    common = f"qp={qp}:bframes=0:scenecut=0:aq-mode=0:ipratio=1:pbratio=1"
    if codec == "x265":
        params = f"{common}:keyint=-1:cutree=0:pools=none:frame-threads=1:info=0:log-level=error"
    else:
        params = f"{common}:keyint=infinite:mbtree=0:threads=1"
    return encoder, {"preset": preset, "tune": "psnr", key: params}


def _check_yuv420_8bit(frames_yuv: YUVFrames | Sequence[np.ndarray]) -> YUVFrames:
    y, u, v = (np.ascontiguousarray(p) for p in frames_yuv)
    if not all(p.dtype == np.uint8 for p in (y, u, v)):
        raise ValueError("encode_decode takes 8-bit (uint8) planes")
    if y.ndim != 3 or y.shape[1] % 2 or y.shape[2] % 2:
        raise ValueError(f"Y must be (T, H, W) with even H and W, got {y.shape}")
    chroma = (y.shape[0], y.shape[1] // 2, y.shape[2] // 2)
    if u.shape != chroma or v.shape != chroma:
        raise ValueError(f"U and V must be {chroma} for 4:2:0, got {u.shape} and {v.shape}")
    return YUVFrames(y, u, v)


def encode_yuv420(
    frames_yuv: YUVFrames | Sequence[np.ndarray],
    *,
    codec: str = "x265",
    qp: int = 37,
    fps: Fraction = Fraction(25),
    preset: str = "medium",
) -> list[bytes]:
    """Encode 8-bit 4:2:0 planes with :func:`encoder_options`; the packets in decoding order."""
    y, u, v = _check_yuv420_8bit(frames_yuv)
    encoder, options = encoder_options(codec, qp, preset)
    ctx = av.CodecContext.create(encoder, "w")
    ctx.width, ctx.height, ctx.pix_fmt = y.shape[2], y.shape[1], "yuv420p"
    ctx.framerate, ctx.time_base = Fraction(fps), 1 / Fraction(fps)
    ctx.options = options
    packets = []
    height, width = y.shape[1:]
    for i in range(len(y)):
        # PyAV's yuv420p layout: Y rows, then U and V each flattened into H/4 rows of W
        packed = np.concatenate([y[i].ravel(), u[i].ravel(), v[i].ravel()])
        packed = packed.reshape(height * 3 // 2, width)
        frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return [bytes(p) for p in packets]


def decode_packets(packets: Sequence[bytes], codec: str = "x265") -> tuple[YUVFrames, list[str]]:
    """Decode packets of :func:`encode_yuv420`: the planes and each frame's picture type (I/P/B)."""
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {sorted(_CODECS)}, not {codec!r}")
    ctx = av.CodecContext.create(_CODECS[codec][1], "r")
    frames = []
    for data in packets:
        frames += ctx.decode(av.Packet(data))
    frames += ctx.decode(None)
    if not frames:
        raise RuntimeError("the decoder returned no frames")
    types = [av.video.frame.PictureType(int(f.pict_type)).name for f in frames]
    planes = [video_frame_planes(f) for f in frames]
    return YUVFrames(*(np.stack(p) for p in zip(*planes))), types


def _encode_decode_uncached(
    planes: YUVFrames, codec: str, qp: int, fps: Fraction, preset: str
) -> YUVFrames:
    packets = encode_yuv420(planes, codec=codec, qp=qp, fps=fps, preset=preset)
    decoded, types = decode_packets(packets, codec)
    if "B" in types:
        raise RuntimeError(f"{codec} produced B frames despite bframes=0: {types}")
    if decoded.y.shape != planes.y.shape:
        raise RuntimeError(f"decoded {decoded.y.shape}, expected {planes.y.shape}")
    return decoded


def _cache_key(planes: YUVFrames, settings: dict) -> str:
    digest = hashlib.sha256()
    # library versions are part of the key: another x265/x264 build may code differently
    shapes = [p.shape for p in planes]
    meta = dict(settings, av=av.__version__, libs=av.library_versions, shapes=shapes)
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for p in planes:
        digest.update(p.tobytes())
    return digest.hexdigest()[:32]


def encode_decode(
    frames_yuv: YUVFrames | Sequence[np.ndarray],
    *,
    codec: str = "x265",
    qp: int = 37,
    fps: Fraction = Fraction(25),
    preset: str = "medium",
    cache_dir: str | Path | None = None,
) -> YUVFrames:
    """Compress 8-bit 4:2:0 planes (Y (T, H, W), U, V (T, H/2, W/2)) and decode them back.

    Fixed QP, low-delay P (see :func:`encoder_options`); a RuntimeError if the decoder reports a B
    frame. With ``cache_dir`` the result is stored as ``.npz`` under a hash of the input bytes,
    every setting and the library versions, and read back on later calls; an entry that is
    unreadable, of the wrong shape or dtype, or fails its sha256 is encoded again (with a log line).
    """
    planes = _check_yuv420_8bit(frames_yuv)
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    if cache_dir is None:
        return _encode_decode_uncached(planes, codec, qp, fps, preset)
    options = encoder_options(codec, qp, preset)  # also validates before anything is hashed
    settings = {"codec": codec, "qp": qp, "fps": str(fps), "preset": preset, "options": options}
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{codec}_qp{qp}_{_cache_key(planes, settings)}.npz"
    if path.is_file():
        cached, problem = _read_cache_entry(path, planes)
        if cached is not None:
            return cached
        log.warning("encode cache entry %s is unusable (%s); encoding again and replacing it", path, problem)
    result = _encode_decode_uncached(planes, codec, qp, fps, preset)
    _write_cache_entry(path, result)
    return result


def _planes_digest(planes: YUVFrames) -> str:
    """sha256 of the three planes' shapes, dtypes and bytes: what a cache entry must hold."""
    digest = hashlib.sha256()
    for p in planes:
        digest.update(f"{p.dtype.str}{p.shape}".encode())
        digest.update(np.ascontiguousarray(p).tobytes())
    return digest.hexdigest()


def _read_cache_entry(path: Path, expected: YUVFrames) -> tuple[YUVFrames | None, str]:
    """The planes stored in ``path`` if they are intact and fit ``expected`` (the encoder's input,
    whose shapes and dtype the decoded planes share); else None and what is wrong.

    Entries hold a sha256 of their planes; entries written before it existed are still used when
    their shapes and dtype fit (the zip's CRC then guards their bytes). An entry is never fatal:
    a truncated, empty or corrupt file (a crash mid-copy, a full disk) is only encoded again.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            planes = YUVFrames(data["y"], data["u"], data["v"])
            stored_digest = str(data["sha256"]) if "sha256" in data.files else None
    except Exception as exc:  # BadZipFile, EOFError, OSError, KeyError, ValueError, ...
        return None, f"cannot read it: {type(exc).__name__}: {exc}"
    for name, got, want in zip("yuv", planes, expected):
        if got.shape != want.shape or got.dtype != want.dtype:
            return None, f"plane {name} is {got.dtype} {got.shape}, expected {want.dtype} {want.shape}"
    if stored_digest is not None and stored_digest != _planes_digest(planes):
        return None, "its sha256 does not match its planes"
    return planes, ""


def _write_cache_entry(path: Path, planes: YUVFrames) -> None:
    """Store ``planes`` with their sha256 as ``path``, atomically; a failure only logs a warning
    (the cache saves time, it must not stop a training run)."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # write, flush to disk, then rename: readers (concurrent workers, a later run after a crash)
        # see either the old entry or the whole new one, never a half-written file
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
            tmp = fh.name
            np.savez(fh, y=planes.y, u=planes.u, v=planes.v, sha256=np.array(_planes_digest(planes)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.warning("cannot write encode cache entry %s (%s); continuing without it", path, exc)
    finally:
        if tmp is not None:  # not renamed: a failed or interrupted write
            Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# space and time


def _to_planes(
    frames: np.ndarray, scale: int
) -> tuple[torch.Tensor, tuple[int, ...], torch.dtype]:
    """(..., H, W, C) array -> float64 (N*C, 1, H, W) tensor, the leading shape and output dtype."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, not {scale}")
    x = np.asarray(frames)
    if x.ndim < 3:
        raise ValueError(f"expected (..., H, W, C), got shape {x.shape}")
    out_dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    lead, (h, w, c) = x.shape[:-3], x.shape[-3:]
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).reshape(-1, h, w, c)
    return t.permute(0, 3, 1, 2).reshape(-1, 1, h, w), lead + (c,), out_dtype


def _from_planes(t: torch.Tensor, lead_c: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
    *lead, c = lead_c
    h, w = t.shape[-2:]
    out = t.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(*lead, h, w, c)
    return out.to(dtype).contiguous().numpy()


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    if size < 1 or size % 2 == 0 or sigma <= 0:
        raise ValueError(f"need an odd size and a positive sigma, got {size}, {sigma}")
    k = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(k**2) / (2.0 * sigma**2))
    return g / g.sum()


def gaussian_kernel(size: int = 13, sigma: float = 1.6) -> np.ndarray:
    """Normalised 2-D Gaussian (size, size), float64, as MATLAB ``fspecial('gaussian', ...)``."""
    g = _gaussian_1d(size, sigma)
    return np.outer(g, g)


def bd_downsample(
    frames: np.ndarray, scale: int = 4, *, size: int = 13, sigma: float = 1.6
) -> np.ndarray:
    """BD degradation: Gaussian blur (13x13, sigma 1.6), then keep rows and columns 0, s, 2s, ...

    ``frames`` is (..., H, W, C); borders are replicated, the kernel is centred on each kept pixel
    and only kept pixels are computed (separable convolution with stride ``scale``). Output
    (..., ceil(H/s), ceil(W/s), C).
    """
    x, lead_c, dtype = _to_planes(frames, scale)
    g = torch.from_numpy(_gaussian_1d(size, sigma))
    pad = size // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, size, 1), stride=(scale, 1))
    x = F.conv2d(x, g.view(1, 1, 1, size), stride=(1, scale))
    return _from_planes(x, lead_c, dtype)


def bicubic_downsample(frames: np.ndarray, scale: int = 4) -> np.ndarray:
    """Bicubic down-sampling by ``scale`` with antialiasing: (..., H, W, C) -> (..., H//s, W//s, C).

    torch's antialiased bicubic uses the a = -0.5 kernel widened by ``scale``, as MATLAB
    ``imresize`` does, so results approximate ``imresize(x, 1/s)``; borders differ slightly
    (MATLAB pads symmetrically, torch renormalises the weights inside the image). Not clipped.
    """
    x, lead_c, dtype = _to_planes(frames, scale)
    h, w = x.shape[-2] // scale, x.shape[-1] // scale
    if h == 0 or w == 0:
        raise ValueError(f"frames of {tuple(x.shape[-2:])} are too small for scale {scale}")
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return _from_planes(x, lead_c, dtype)


def temporal_subsample(frames: FramesT) -> FramesT:
    """Every other frame starting with the first (0, 2, 4, ...), along the first axis."""
    return frames[::2]
