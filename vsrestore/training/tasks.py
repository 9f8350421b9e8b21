"""The three training tasks: how each turns source clips into (input, target) pairs.

A task prepares its sources once (degrading them: bit truncation, x265/x264 round trips, BD or
bicubic down-sampling), then draws random patches with flips, 90-degree rotations and temporal
reversal. Tensors follow each network's own layout:

- ``mstfn``: input (15, p, p) = frames t-2..t+2 as B, G, R, MSB-aligned /65535; target (3, p, p);
- ``stifn``: input (7, p, p) decoded luma /255; target (1, p, p) original luma;
- ``msitf``: input (4, 3, p, p) low-resolution RGB; target (7, 3, 4p, 4p).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .data import YUVFrames, rgb_to_yuv420
from .degrade import bd_downsample, bicubic_downsample, encode_decode, high_bit_from_8bit, to_msb16, truncate_bits
from .sources import Source

Pair = tuple[torch.Tensor, torch.Tensor]


def augment(rng: np.random.Generator, *tensors: torch.Tensor, time_dims: Sequence[int | None]) -> list[torch.Tensor]:
    """The same random flip, 90-degree rotation and temporal reversal for every tensor.

    Spatial axes are the last two; ``time_dims[i]`` is tensor i's frame axis (None: no time axis).
    """
    return apply_augmentation(draw_augmentation(rng), tensors, time_dims)


def draw_augmentation(rng: np.random.Generator) -> tuple[bool, bool, bool, bool]:
    """Random (horizontal flip, vertical flip, transpose, temporal reversal)."""
    hflip, vflip, rot, reverse = (bool(v) for v in rng.integers(0, 2, size=4))
    return hflip, vflip, rot, reverse


def apply_augmentation(
    choice: tuple[bool, bool, bool, bool], tensors: Sequence[torch.Tensor], time_dims: Sequence[int | None]
) -> list[torch.Tensor]:
    """:func:`augment` with the choices of :func:`draw_augmentation` given."""
    hflip, vflip, rot, reverse = choice
    out = []
    for t, tdim in zip(tensors, time_dims):
        if hflip:
            t = t.flip(-1)
        if vflip:
            t = t.flip(-2)
        if rot:
            t = t.transpose(-1, -2)
        if reverse and tdim is not None:
            t = t.flip(tdim)
        out.append(t.contiguous())
    return out


def black_bar(rng: np.random.Generator, *tensors: torch.Tensor) -> None:
    """Blacken the same band along one random edge of every (..., H, W) tensor, in place: 1/8 to 1/2
    of the side, as a letterbox bar. Black is exact in every contract (input and truth both 0). The
    training clips have almost no such bars, and the first 8-bit MSTFN speckled the black bar of a
    held-out clip with up to two 10-bit codes, which tripled its banding score (CAMBI)."""
    edge = int(rng.integers(4))
    side = tensors[0].shape[-2 if edge % 2 else -1]
    width = int(rng.integers(max(1, side // 8), side // 2 + 1))
    band = slice(0, width) if edge < 2 else slice(side - width, side)
    for t in tensors:
        if edge % 2:
            t[..., band, :] = 0
        else:
            t[..., band] = 0


def bit_depth_pair(frames: np.ndarray, in_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(input, ground truth) for bit-depth enhancement: uint16 RGB, the input truncated to ``in_bits``.

    16-bit frames are their own ground truth. 8-bit frames are the truth of inputs with at most 6
    bits (MSB-aligned, v << 8); for 7 or 8 input bits they hold too little above the input, so 2x2
    area averaging makes 10-bit truth (at half the size).
    """
    if frames.dtype == np.uint16:
        gt = frames
    elif in_bits <= 6:
        gt = to_msb16(frames)
    else:
        gt = high_bit_from_8bit(frames, factor=2)
    return truncate_bits(gt, 16, in_bits), gt


def compression_pair(
    frames: np.ndarray, codec: str, qp: int, cache_dir: Path | None
) -> tuple[YUVFrames, YUVFrames]:
    """(decoded, original) 8-bit 4:2:0 planes of RGB ``frames`` after an encoder round trip.

    Deeper frames are rounded to 8 bits (the contract is 8-bit video), odd sizes cropped to even,
    and RGB goes to BT.601 limited range, as the encoders expect.
    """
    if frames.dtype != np.uint8:
        frames = np.rint(frames.astype(np.float32) / 257.0).astype(np.uint8)
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    yuv = rgb_to_yuv420(frames[:, :h, :w])
    return encode_decode(yuv, codec=codec, qp=qp, fps=Fraction(25), cache_dir=cache_dir), yuv


def spacetime_pair(frames: np.ndarray, degradation: str) -> tuple[np.ndarray, np.ndarray]:
    """(low resolution, high resolution) float32 RGB in [0, 1] of every frame; sizes cropped to x4."""
    peak = 255.0 if frames.dtype == np.uint8 else 65535.0
    h, w = frames.shape[1] // 4 * 4, frames.shape[2] // 4 * 4
    hr = frames[:, :h, :w].astype(np.float32) / peak
    down = bd_downsample if degradation == "bd" else bicubic_downsample
    return np.clip(down(hr, scale=4), 0.0, 1.0).astype(np.float32), hr


@dataclass
class Task:
    """Base: prepared sequences and patch sampling shared by the three tasks."""

    name: ClassVar[str]
    arch: ClassVar[str]
    frames: ClassVar[int]  # source frames per sample
    options: dict[str, Any] = field(default_factory=dict)
    prepared: list[Any] = field(default_factory=list)

    def prepare(self, sources: list[Source], cache_dir: Path | None = None) -> None:
        self.prepared = [item for s in sources for item in self.prepare_source(s, cache_dir)]
        if not self.prepared:
            raise ValueError(f"{self.name}: no usable training sources")

    def prepare_source(self, source: Source, cache_dir: Path | None) -> list[Any]:
        """The prepared sequences of one source (one, unless the task mixes degradations)."""
        return [self.prepare_one(source, cache_dir)]

    def prepare_one(self, source: Source, cache_dir: Path | None) -> Any:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, patch: int) -> Pair:
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        return {"task": self.name, **self.options}

    def residual_start(self) -> float:
        """The constant residual a fresh network starts with: where the classical baseline is."""
        return 0.0

    def fit_config(self, config: Any) -> Any:
        """The network config a fresh run builds from ``config``, matched to this task's options."""
        return config

    def frame_size(self, item: Any) -> tuple[int, int]:
        """(height, width) of the input frames of a prepared sequence that a patch may cover."""
        return item[0].shape[1:3]

    def _draw(self, rng: np.random.Generator, patch: int) -> Any:
        """A random prepared sequence that holds a ``patch``-sided crop. Smaller ones (a panned
        still is half its photograph's size) sit out: they would otherwise forbid large patches."""
        fitting = [item for item in self.prepared if min(self.frame_size(item)) >= patch]
        if not fitting:
            largest = max((self.frame_size(item) for item in self.prepared), key=min)
            raise ValueError(f"patch {patch} is larger than every training frame (the largest is {largest[1]}x{largest[0]})")
        return fitting[int(rng.integers(len(fitting)))]

    def _window(self, rng: np.random.Generator, length: int) -> list[int]:
        """A window of ``frames`` consecutive indices (clamped at the ends of short clips)."""
        start = int(rng.integers(0, max(length - self.frames, 0) + 1))
        return [min(start + k, length - 1) for k in range(self.frames)]


@dataclass
class MSTFNTask(Task):
    """Bit-depth enhancement: ground truth truncated to ``in_bits`` significant bits."""

    name: ClassVar[str] = "mstfn"
    arch: ClassVar[str] = "mstfn"
    frames: ClassVar[int] = 5

    def __post_init__(self) -> None:
        self.options = {"in_bits": 8, **self.options}
        self.options.setdefault("out_bits", 16)

    @property
    def bits(self) -> list[int]:
        """The input contracts trained: one, or several mixed (a pretraining stage)."""
        bits = self.options["in_bits"]
        return [int(b) for b in bits] if isinstance(bits, (list, tuple)) else [int(bits)]

    def residual_start(self) -> float:
        """Half a quantisation step of the input (the mid-rise reconstruction), on one contract.

        The input is zero padded, so its error is a step's worth of missing bits, half a step on
        average: starting there, training begins at the mid-rise baseline instead of 3-6 dB below
        it (at 4 bits) and spends no steps learning a constant. Mixed contracts start at zero.
        """
        if len(self.bits) != 1 or self.bits[0] >= 16:
            return 0.0
        return 2.0 ** (15 - self.bits[0]) / 65535.0

    def prepare_source(self, source: Source, cache_dir: Path | None) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = [bit_depth_pair(source.frames, bits) for bits in self.bits]
        return [(low[..., ::-1].copy(), gt[..., ::-1].copy()) for low, gt in pairs]  # B, G, R like the authors

    def sample(self, rng: np.random.Generator, patch: int) -> Pair:
        low, gt = self._draw(rng, patch)
        idx = self._window(rng, low.shape[0])
        y, x = _crop(rng, low.shape[1:3], patch)
        inp = torch.from_numpy(low[idx, y : y + patch, x : x + patch].astype(np.float32) / 65535.0)
        tgt = torch.from_numpy(gt[idx[2], y : y + patch, x : x + patch].astype(np.float32) / 65535.0)
        inp, tgt = augment(rng, inp.permute(0, 3, 1, 2), tgt.permute(2, 0, 1), time_dims=(0, None))
        chance = float(self.options.get("letterbox", 0.0))
        if chance and rng.random() < chance:
            black_bar(rng, inp, tgt)
        return inp.reshape(-1, patch, patch), tgt


@dataclass
class STIFNTask(Task):
    """Compression artifacts: luma after an x265 (or x264) round trip at ``qp``."""

    name: ClassVar[str] = "stifn"
    arch: ClassVar[str] = "stifn"
    frames: ClassVar[int] = 7

    def __post_init__(self) -> None:
        self.options = {"qp": 37, "codec": "x265", **self.options}

    def prepare_one(self, source: Source, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
        decoded, original = compression_pair(source.frames, self.options["codec"], self.options["qp"], cache_dir)
        return decoded.y, original.y

    def sample(self, rng: np.random.Generator, patch: int) -> Pair:
        dec, gt = self._draw(rng, patch)
        idx = self._window(rng, dec.shape[0])
        y, x = _crop(rng, dec.shape[1:3], patch)
        inp = torch.from_numpy(dec[idx, y : y + patch, x : x + patch].astype(np.float32) / 255.0)
        tgt = torch.from_numpy(gt[idx[3], y : y + patch, x : x + patch].astype(np.float32) / 255.0)[None]
        inp, tgt = augment(rng, inp, tgt, time_dims=(0, None))
        return inp, tgt


@dataclass
class MSITFTask(Task):
    """Space-time super-resolution: frames 1, 3, 5, 7 of 7, down-sampled x4 (BD or bicubic)."""

    name: ClassVar[str] = "msitf"
    arch: ClassVar[str] = "msitf"
    frames: ClassVar[int] = 7

    def __post_init__(self) -> None:
        self.options = {"degradation": "bd", "scale": 4, **self.options}

    def prepare_one(self, source: Source, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
        return spacetime_pair(source.frames, self.options["degradation"])

    def fit_config(self, config: Any) -> Any:
        """A cubic base samples the grid of the degradation: BD keeps pixel 0 of every 4x4 block."""
        if config.base != "cubic":
            return config
        return replace(config, lr_grid="corner" if self.options["degradation"] == "bd" else "centre")

    def frame_size(self, item: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
        h, w = item[0].shape[1:3]
        return h - 1, w - 1  # a flipped BD axis crops one pixel later (see sample)

    def sample(self, rng: np.random.Generator, patch: int) -> Pair:
        lr, hr = self._draw(rng, patch)
        idx = self._window(rng, hr.shape[0])
        choice = draw_augmentation(rng)
        # BD keeps pixel 0 of each 4x4 block: low-resolution pixel i sits on high-resolution pixel
        # 4i. A flip turns that into the block's last pixel, so a flipped axis crops its target 3
        # pixels earlier to keep pixel i on 4i (bicubic down-sampling is centred, flips keep it).
        hshift, vshift = (int(flip and self.options["degradation"] == "bd") for flip in choice[:2])
        y, x = _crop(rng, (lr.shape[1] - vshift, lr.shape[2] - hshift), patch)
        y, x = y + vshift, x + hshift
        ty, tx = 4 * y - 3 * vshift, 4 * x - 3 * hshift
        inp = torch.from_numpy(lr[idx[::2], y : y + patch, x : x + patch]).permute(0, 3, 1, 2)
        tgt = torch.from_numpy(hr[idx, ty : ty + 4 * patch, tx : tx + 4 * patch]).permute(0, 3, 1, 2)
        return tuple(apply_augmentation(choice, (inp, tgt), time_dims=(0, 0)))


def _crop(rng: np.random.Generator, size: tuple[int, int], patch: int) -> tuple[int, int]:
    h, w = size
    if h < patch or w < patch:
        raise ValueError(f"patch {patch} is larger than a {w}x{h} training frame")
    return int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))


TASKS: dict[str, type[Task]] = {t.name: t for t in (MSTFNTask, STIFNTask, MSITFTask)}


def make_task(name: str, **options: Any) -> Task:
    """The task called ``name`` with its degradation ``options`` (in_bits, qp, codec, degradation)."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, not {name!r}")
    return TASKS[name](options={k: v for k, v in options.items() if v is not None})
