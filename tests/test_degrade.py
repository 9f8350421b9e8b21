"""Degradations of vsrestore.training.degrade: exact values, codec settings, the encode cache."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from vsrestore.training import degrade
from vsrestore.training.data import YUVFrames
from vsrestore.evaluation.metrics import psnr

# --------------------------------------------------------------------------------------------------
# bit depth


def test_truncate_bits_exact_values() -> None:
    x16 = np.array([0xABCD, 0xFFFF, 0x0FFF, 0], np.uint16)
    assert degrade.truncate_bits(x16, 16, 4).tolist() == [0xA000, 0xF000, 0x0000, 0]
    assert degrade.truncate_bits(x16, 16, 8).tolist() == [0xAB00, 0xFF00, 0x0F00, 0]
    np.testing.assert_array_equal(degrade.truncate_bits(x16, 16, 16), x16)
    x8 = np.array([0b10110111, 255], np.uint8)
    out8 = degrade.truncate_bits(x8, 8, 3)
    assert out8.dtype == np.uint8 and out8.tolist() == [0b10100000, 0b11100000]
    # 10-bit values in a 16-bit word: the container is 10 bits
    x10 = np.array([0x3FF, 0x155], np.uint16)
    assert degrade.truncate_bits(x10, 10, 4).tolist() == [0x3C0, 0x140]


@pytest.mark.parametrize(
    ("x", "container", "keep"),
    [
        (np.zeros(2, np.uint16), 16, 0),
        (np.zeros(2, np.uint16), 16, 17),
        (np.zeros(2, np.uint8), 9, 4),
        (np.zeros(2, np.float32), 8, 4),
    ],
)
def test_truncate_bits_rejects_bad_arguments(x, container, keep) -> None:
    with pytest.raises(ValueError):
        degrade.truncate_bits(x, container, keep)


def test_to_msb16_and_significant_bits() -> None:
    x8 = np.array([0, 1, 128, 255], np.uint8)
    out = degrade.to_msb16(x8)
    assert out.dtype == np.uint16 and out.tolist() == [0, 256, 32768, 65280]
    assert degrade.significant_bits(out) == 8
    assert degrade.significant_bits(np.array([0x8000], np.uint16)) == 1
    assert degrade.significant_bits(np.array([0xFFFF], np.uint16)) == 16
    assert degrade.significant_bits(np.array([4, 8], np.uint8)) == 6
    assert degrade.significant_bits(np.zeros(3, np.uint16)) == 0
    assert degrade.significant_bits(np.array([0x3C0], np.uint16), container_bits=10) == 4


def test_high_bit_from_8bit_exact_block_means() -> None:
    x = np.array([[1, 2], [3, 5]], np.uint8)[None, :, :, None]  # (1, 2, 2, 1)
    assert degrade.high_bit_from_8bit(x).item() == 11 * 64  # mean 2.75 -> 704
    x3 = np.zeros((1, 3, 3, 1), np.uint8)
    x3[0, 0, 0, 0] = 10
    assert degrade.high_bit_from_8bit(x3, factor=3).item() == 284  # round(10 * 256 / 9)
    white = np.full((1, 4, 4, 3), 255, np.uint8)
    assert np.all(degrade.high_bit_from_8bit(white) == 65280)
    odd = np.zeros((2, 5, 7, 3), np.uint8)
    assert degrade.high_bit_from_8bit(odd).shape == (2, 2, 3, 3)  # remainders dropped


def test_high_bit_from_8bit_adds_low_bits() -> None:
    rng = np.random.default_rng(3)
    ramp = np.linspace(40, 90, 64)[None, None, :, None] + rng.normal(0, 2, (2, 48, 64, 3))
    frames = np.clip(np.rint(ramp), 0, 255).astype(np.uint8)
    out = degrade.high_bit_from_8bit(frames)
    assert out.shape == (2, 24, 32, 3) and out.dtype == np.uint16
    expected = frames.reshape(2, 24, 2, 32, 2, 3).astype(np.float64).mean(axis=(2, 4)) * 256
    np.testing.assert_array_equal(out, expected)  # exact: multiples of 64
    assert np.any(out % 256 != 0)
    assert np.unique(out).size > np.unique(frames).size
    assert degrade.significant_bits(degrade.to_msb16(frames)) == 8
    assert degrade.significant_bits(out) == 10


# --------------------------------------------------------------------------------------------------
# compression


@pytest.fixture(scope="module")
def clip() -> YUVFrames:
    """5 frames of 64x48 texture panning one pixel a frame, with smooth chroma."""
    rng = np.random.default_rng(7)
    texture = rng.uniform(0, 1, (48, 80))
    texture = (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) / 3  # some correlation
    y = np.stack([40 + 160 * texture[:, i : i + 64] for i in range(5)])
    yy, xx = np.mgrid[0:24, 0:32]
    u = np.broadcast_to(128 + 40 * np.sin(xx / 5.0), (5, 24, 32))
    v = np.broadcast_to(128 + 40 * np.cos(yy / 4.0), (5, 24, 32))
    return YUVFrames(*(np.rint(p).astype(np.uint8) for p in (y, u, v)))


FAST = {"preset": "ultrafast", "fps": Fraction(25)}


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_encode_decode_is_deterministic(clip: YUVFrames, codec: str) -> None:
    first = degrade.encode_decode(clip, codec=codec, qp=32, **FAST)
    second = degrade.encode_decode(clip, codec=codec, qp=32, **FAST)
    for a, b, ref in zip(first, second, clip):
        assert a.shape == ref.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    assert 25 < psnr(first.y, clip.y, 255) < 60  # really coded, not passed through


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_low_delay_p_has_no_b_frames(clip: YUVFrames, codec: str) -> None:
    # the default preset would use B frames; bframes=0 must win over it
    packets = degrade.encode_yuv420(clip, codec=codec, qp=37, preset="medium")
    decoded, types = degrade.decode_packets(packets, codec)
    assert types == ["I", "P", "P", "P", "P"]
    assert decoded.y.shape == clip.y.shape


def test_picture_type_check_can_see_b_frames(clip: YUVFrames) -> None:
    """Control: the same pipeline with x264's default GOP does report B frames."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 48, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    ctx.options = {"preset": "medium", "x264-params": "b-adapt=0:bframes=2:threads=1"}
    packets = []
    for i in range(len(clip.y)):
        packed = np.concatenate([p[i].ravel() for p in clip]).reshape(72, 64)
        frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    _, types = degrade.decode_packets([bytes(p) for p in packets], "x264")
    assert "B" in types


def test_lower_qp_gives_higher_psnr(clip: YUVFrames) -> None:
    fine = degrade.encode_decode(clip, codec="x265", qp=22, **FAST)
    coarse = degrade.encode_decode(clip, codec="x265", qp=37, **FAST)
    assert psnr(fine.y, clip.y, 255) > psnr(coarse.y, clip.y, 255) + 3


def test_encode_decode_cache(
    clip: YUVFrames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = degrade.encode_decode(clip, codec="x265", qp=37, cache_dir=tmp_path, **FAST)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and not list(tmp_path.glob("*.tmp"))

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although the result is cached")

    monkeypatch.setattr(degrade, "_encode_decode_uncached", no_encoder)
    cached = degrade.encode_decode(clip, codec="x265", qp=37, cache_dir=tmp_path, **FAST)
    for a, b in zip(first, cached):
        np.testing.assert_array_equal(a, b)
    # another setting or other pixels miss the cache
    with pytest.raises(AssertionError, match="encoder ran"):
        degrade.encode_decode(clip, codec="x265", qp=36, cache_dir=tmp_path, **FAST)
    changed = YUVFrames(clip.y ^ np.uint8(1), clip.u, clip.v)
    with pytest.raises(AssertionError, match="encoder ran"):
        degrade.encode_decode(changed, codec="x265", qp=37, cache_dir=tmp_path, **FAST)


def test_encode_decode_rejects_bad_input(clip: YUVFrames) -> None:
    with pytest.raises(ValueError):
        degrade.encode_decode((clip.y[:, :47], clip.u, clip.v))
    with pytest.raises(ValueError):
        degrade.encode_decode((clip.y.astype(np.uint16), clip.u, clip.v))
    with pytest.raises(ValueError):
        degrade.encode_decode(clip, codec="vp9")
    with pytest.raises(ValueError):
        degrade.encode_decode(clip, qp=60)


# --------------------------------------------------------------------------------------------------
# space and time


def test_gaussian_kernel() -> None:
    k = degrade.gaussian_kernel()
    assert k.shape == (13, 13)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, k.T, atol=0)
    r = np.arange(13) - 6
    raw = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.6**2))
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=1e-12)


def bd_reference(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """Explicit BD of one (H, W) plane: edge padding, 13x13 weighted sums at rows/cols 0, s, ..."""
    padded = np.pad(image, 6, mode="edge")
    windows = sliding_window_view(padded, (13, 13))[::scale, ::scale]
    return np.einsum("ijkl,kl->ij", windows, degrade.gaussian_kernel())


def test_bd_downsample_matches_explicit_sums() -> None:
    rng = np.random.default_rng(5)
    frames = rng.uniform(0, 1, (2, 24, 30, 3))  # 30 is not a multiple of 4: ceil(30/4) = 8
    out = degrade.bd_downsample(frames)
    assert out.shape == (2, 6, 8, 3) and out.dtype == np.float64
    for t in range(2):
        for c in range(3):
            expected = bd_reference(frames[t, :, :, c])
            np.testing.assert_allclose(out[t, :, :, c], expected, atol=1e-12)


def test_bd_downsample_alignment_and_borders() -> None:
    k = degrade.gaussian_kernel()
    impulse = np.zeros((1, 24, 32, 1))
    impulse[0, 8, 12, 0] = 1.0  # a kept pixel: output (2, 3)
    out = degrade.bd_downsample(impulse)[0, :, :, 0]
    assert out[2, 3] == pytest.approx(k[6, 6], rel=1e-12)
    assert out[1, 3] == pytest.approx(k[2, 6], rel=1e-12)  # 4 rows away from the centre
    assert out.argmax() == np.ravel_multi_index((2, 3), out.shape)
    # replicated borders: a corner impulse is copied into the 6-pixel padding
    corner = np.zeros((1, 16, 16, 1))
    corner[0, 0, 0, 0] = 1.0
    assert degrade.bd_downsample(corner)[0, 0, 0, 0] == pytest.approx(k[:7, :7].sum(), rel=1e-12)


def test_bd_downsample_keeps_constants() -> None:
    frames = np.full((3, 16, 20, 3), 0.3, np.float32)
    out = degrade.bd_downsample(frames)
    assert out.shape == (3, 4, 5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.3, rtol=1e-6)


def test_bicubic_downsample() -> None:
    ramp = np.broadcast_to(np.arange(64, dtype=np.float64)[None, :, None], (48, 64, 1))
    out = degrade.bicubic_downsample(ramp[None])
    assert out.shape == (1, 12, 16, 1) and out.dtype == np.float64
    # bicubic reproduces a linear ramp away from the borders; output j sits at input 4j + 1.5
    np.testing.assert_allclose(out[0, 0, 2:-2, 0], 4 * np.arange(2, 14) + 1.5, atol=1e-9)
    constant = degrade.bicubic_downsample(np.full((2, 20, 24, 3), 7, np.uint8))
    assert constant.shape == (2, 5, 6, 3) and constant.dtype == np.float32
    np.testing.assert_allclose(constant, 7.0, rtol=1e-6)


def test_temporal_subsample() -> None:
    assert degrade.temporal_subsample(np.arange(7)).tolist() == [0, 2, 4, 6]
    assert degrade.temporal_subsample(torch.arange(6)).tolist() == [0, 2, 4]
    assert degrade.temporal_subsample(list("abcde")) == ["a", "c", "e"]
