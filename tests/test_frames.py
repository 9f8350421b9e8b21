"""Frames to tensors and back: vsrestore.bridge.frames on real VapourSynth frames.

Patterns are written into frames of a real clip with numpy inside ``std.ModifyFrame`` (so the frames
read back are ordinary read-only frames from the graph). Plane widths are chosen so that every row is
padded (stride > width * bytes per sample), which every test asserts before relying on it.
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsrestore.bridge.frames import frames_to_tensor, quantize, sample_scale, tensor_to_frame

core = vs.core


# --------------------------------------------------------------------------------------------------
# helpers


def pattern_clip(fmt: int, width: int, height: int, planes_per_frame: list[list[np.ndarray]]) -> vs.VideoNode:
    """A clip whose frame n, plane p holds ``planes_per_frame[n][p]`` (written with numpy)."""
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=len(planes_per_frame))

    def write(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, data in enumerate(planes_per_frame[n]):
            view = np.asarray(out[p])
            assert view.shape == data.shape and view.dtype == data.dtype
            view[...] = data
        return out

    return core.std.ModifyFrame(blank, blank, write)


def assert_rows_padded(frame: vs.VideoFrame) -> None:
    for p in range(frame.format.num_planes):
        width = np.asarray(frame[p]).shape[1]
        assert frame.get_stride(p) > width * frame.format.bytes_per_sample, (p, frame.get_stride(p), width)


def all_values(fmt: vs.VideoFormat, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Every code of an integer format (repeated to fill ``shape``), in a random order."""
    peak = (1 << fmt.bits_per_sample) - 1
    count = shape[0] * shape[1]
    assert count >= peak + 1, "the plane must be large enough to hold every code"
    values = np.arange(count) % (peak + 1)
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if fmt.bytes_per_sample == 1 else np.uint16
    return rng.permutation(values).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------------------------------
# sample_scale


@pytest.mark.parametrize(
    "fmt, expected",
    [
        (vs.GRAY8, 1 / 255),
        (vs.GRAY10, 1 / 1023),
        (vs.GRAY12, 1 / 4095),
        (vs.GRAY16, 1 / 65535),
        (vs.GRAYS, 1.0),
        (vs.GRAYH, 1.0),
    ],
)
def test_sample_scale_plain(fmt: int, expected: float) -> None:
    assert sample_scale(core.get_video_format(fmt)) == expected


@pytest.mark.parametrize(
    "fmt, shift",
    [(vs.GRAY8, 8), (vs.GRAY10, 6), (vs.GRAY12, 4), (vs.GRAY16, 0)],
)
def test_sample_scale_msb_aligned(fmt: int, shift: int) -> None:
    scale = sample_scale(core.get_video_format(fmt), msb_bits=16)
    assert scale == pytest.approx((1 << shift) / 65535, rel=1e-15)
    # an 8-bit v maps to v * 256 / 65535, i.e. (v << 8) / 65535, not v / 255
    if fmt == vs.GRAY8:
        assert 255 * scale == pytest.approx(65280 / 65535, rel=1e-15)
        assert 255 * scale < 1.0


def test_sample_scale_msb_ignored_for_float() -> None:
    assert sample_scale(core.get_video_format(vs.RGBS), msb_bits=16) == 1.0
    assert sample_scale(core.get_video_format(vs.RGBH), msb_bits=16) == 1.0


def test_msb_aligned_read_values_and_round_trip() -> None:
    """Reading an 8-bit frame with the MSB scale gives v * 256 / 65535; writing with it restores v."""
    width, height = 34, 8  # 272 pixels >= 256 codes; 34 bytes per row in a 64-byte stride
    fmt = core.get_video_format(vs.GRAY8)
    data = all_values(fmt, (height, width), seed=1)
    src = pattern_clip(vs.GRAY8, width, height, [[data]]).get_frame(0)
    assert_rows_padded(src)
    scale = sample_scale(fmt, msb_bits=16)

    tensor = frames_to_tensor([src], scale=scale)
    expected = data.astype(np.float64) * 256 / 65535
    got = tensor[0, 0].double().numpy()
    # float32 of the exact value: one rounding for the product, one for the scale -> < 2 ulp
    np.testing.assert_allclose(got, expected, rtol=2 * 2.0**-23, atol=0)
    assert not np.allclose(got, data / 255.0, rtol=1e-4, atol=0)  # really not v / 255

    out = src.copy()
    np.asarray(out[0])[...] = 0
    tensor_to_frame(tensor[0], out, scale=scale)
    np.testing.assert_array_equal(np.asarray(out[0]), data)


# --------------------------------------------------------------------------------------------------
# bit-exact round trips


INTEGER_CASES = [
    # (format, width, height): every code fits, every row is padded
    (vs.YUV444P8, 34, 8),  # 34 B of 64
    (vs.YUV444P10, 50, 21),  # 100 B of 128, 1050 px >= 1024
    (vs.YUV444P12, 34, 121),  # 68 B of 128, 4114 px >= 4096
    (vs.YUV444P16, 50, 1311),  # 100 B of 128, 65550 px >= 65536
    (vs.RGB24, 50, 6),
]


@pytest.mark.parametrize("fmt_id, width, height", INTEGER_CASES)
def test_integer_round_trip_is_bit_exact(fmt_id: int, width: int, height: int) -> None:
    fmt = core.get_video_format(fmt_id)
    data = [[all_values(fmt, (height, width), seed=10 * n + p) for p in range(3)] for n in range(2)]
    clip = pattern_clip(fmt_id, width, height, data)
    frames = [clip.get_frame(n) for n in range(2)]
    assert_rows_padded(frames[0])
    scale = sample_scale(fmt)

    tensor = frames_to_tensor(frames, scale=scale)
    assert tensor.shape == (2, 3, height, width)
    assert tensor.dtype == torch.float32
    # samples are read as v * scale in float32: within 1 ulp of v / peak, and 1.0 at the peak
    peak = (1 << fmt.bits_per_sample) - 1
    expected = np.stack([np.stack(planes) for planes in data]).astype(np.float64) / peak
    np.testing.assert_allclose(tensor.double().numpy(), expected, rtol=2 * 2.0**-23, atol=0)
    assert float(tensor.min()) == 0.0

    for n, frame in enumerate(frames):
        out = frame.copy()
        for p in range(3):
            np.asarray(out[p])[...] = 0
        tensor_to_frame(tensor[n], out)  # default scale: sample_scale of the frame's format
        for p in range(3):
            got = np.asarray(out[p])
            assert got.dtype == data[n][p].dtype
            np.testing.assert_array_equal(got, data[n][p])


def every_finite_half(shape: tuple[int, int], seed: int) -> np.ndarray:
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16)
    values = values[~np.isnan(values)]  # 63490 values: +-0, subnormals, normals, +-inf
    rng = np.random.default_rng(seed)
    count = shape[0] * shape[1]
    assert count >= values.size
    return rng.permutation(np.resize(values, count)).reshape(shape)


def float32_mix(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-40, 38, shape)).astype(np.float32)
    specials = np.array(
        [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).tiny,
         np.float32(1e-45), np.nextafter(np.float32(1), np.float32(2)), 0.1, 1 / 3],
        dtype=np.float32,
    )
    values.flat[: specials.size] = specials
    return values


@pytest.mark.parametrize(
    "fmt_id, width, height, make",
    [
        (vs.RGBS, 50, 12, float32_mix),  # 200 B of 256
        (vs.RGBH, 34, 1868, every_finite_half),  # 68 B of 128; 63512 px >= 63490 finite halves
    ],
)
def test_float_round_trip_is_bit_exact(fmt_id: int, width: int, height: int, make) -> None:
    data = [[make((height, width), seed=p) for p in range(3)]]
    frame = pattern_clip(fmt_id, width, height, data).get_frame(0)
    assert_rows_padded(frame)
    fmt = frame.format
    assert sample_scale(fmt) == 1.0

    tensor = frames_to_tensor([frame], scale=sample_scale(fmt))
    assert tensor.dtype == torch.float32
    # values are taken as they are (float16 widens exactly to float32)
    for p in range(3):
        np.testing.assert_array_equal(tensor[0, p].numpy(), data[0][p].astype(np.float32))

    out = frame.copy()
    for p in range(3):
        np.asarray(out[p])[...] = 7
    tensor_to_frame(tensor[0], out)
    uint = np.uint32 if fmt.bytes_per_sample == 4 else np.uint16
    for p in range(3):
        got = np.asarray(out[p])
        assert got.dtype == data[0][p].dtype
        # bitwise: -0.0 stays -0.0, subnormals and infinities survive
        np.testing.assert_array_equal(got.view(uint), data[0][p].view(uint))


def test_float_values_are_not_clamped() -> None:
    frame = core.std.BlankClip(format=vs.GRAYS, width=50, height=2).get_frame(0).copy()
    values = torch.tensor([-0.25, 1.5, 3.0, -7.0], dtype=torch.float32).repeat(2, 13)[:, :50]
    tensor_to_frame(values[None], frame)
    np.testing.assert_array_equal(np.asarray(frame[0]), values.numpy())


# --------------------------------------------------------------------------------------------------
# padding


def test_write_leaves_row_padding_alone() -> None:
    """tensor_to_frame writes width samples per row, at the right stride, and nothing in between."""
    width, height = 34, 5
    frame = core.std.BlankClip(format=vs.GRAY16, width=width, height=height).get_frame(0).copy()
    stride = frame.get_stride(0)
    row_bytes = width * 2
    assert stride > row_bytes
    base = frame.get_write_ptr(0).value
    raw = (ctypes.c_uint8 * (stride * height)).from_address(base)
    ctypes.memset(base, 0xAB, stride * height)  # samples and padding alike

    values = torch.arange(height * width, dtype=torch.float32).reshape(1, height, width)
    tensor_to_frame(values, frame, scale=1.0)

    memory = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride)
    samples = memory[:, :row_bytes].copy().view(np.uint16)
    np.testing.assert_array_equal(samples, values[0].numpy().astype(np.uint16))
    # the last row's padding may lie beyond the plane; check the padding between rows
    assert (memory[:-1, row_bytes:] == 0xAB).all()


# --------------------------------------------------------------------------------------------------
# quantize: rounding and clamping


def test_quantize_rounds_half_to_even_not_truncating() -> None:
    fmt = core.get_video_format(vs.GRAY8)
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, 252.5, 253.5, 254.5, 0.49, 0.51, 7.999, 9.4999, 200.5001])
    got = quantize(x, fmt, scale=1.0)
    assert got.dtype == torch.uint8
    assert got.tolist() == [0, 2, 2, 4, 252, 254, 254, 0, 1, 8, 9, 201]


@pytest.mark.parametrize(
    "fmt_id, dtype",
    [(vs.GRAY8, torch.uint8), (vs.GRAY10, torch.uint16), (vs.GRAY12, torch.uint16), (vs.GRAY16, torch.uint16),
     (vs.GRAYH, torch.float16), (vs.GRAYS, torch.float32)],
)
def test_quantize_dtype_matches_the_plane(fmt_id: int, dtype: torch.dtype) -> None:
    fmt = core.get_video_format(fmt_id)
    plane_dtype = np.asarray(core.std.BlankClip(format=fmt_id, width=16, height=2).get_frame(0)[0]).dtype
    got = quantize(torch.tensor([0.25, 1.0], dtype=torch.float64), fmt, scale=sample_scale(fmt))
    assert got.dtype == dtype
    assert torch.from_numpy(np.zeros(1, plane_dtype)).dtype == dtype
    if fmt.sample_type == vs.FLOAT:
        assert got.tolist() == [0.25, 1.0]  # floats keep their values (and are not divided)
    else:
        peak = (1 << fmt.bits_per_sample) - 1
        assert got.tolist() == [round(peak / 4), peak]


def test_quantize_divides_by_scale() -> None:
    fmt = core.get_video_format(vs.GRAY16)
    # scale a power of two: the division is exact, so .5 boundaries stay .5 boundaries
    x = torch.tensor([1.25, 1.375, 0.125, 0.375, 8191.875]) * 0.25
    got = quantize(x, fmt, scale=0.25)
    assert got.dtype == torch.uint16
    assert got.tolist() == [1, 1, 0, 0, 8192]
    x = torch.tensor([2.5, 3.5]) * 0.25
    assert quantize(x, fmt, scale=0.25).tolist() == [2, 4]


@pytest.mark.parametrize("fmt_id, width", [(vs.GRAY8, 34), (vs.GRAY10, 34), (vs.GRAY12, 50), (vs.GRAY16, 50)])
def test_tensor_to_frame_rounds_to_nearest(fmt_id: int, width: int) -> None:
    """Values 0.4 code below/above a half-code land on the nearest code, never truncated."""
    fmt = core.get_video_format(fmt_id)
    peak = (1 << fmt.bits_per_sample) - 1
    rng = np.random.default_rng(fmt_id)
    codes = rng.integers(0, peak, size=(4, width))  # below the peak, so v + 1 is a valid code
    frame = core.std.BlankClip(format=fmt_id, width=width, height=4).get_frame(0).copy()
    assert_rows_padded(frame)

    for offset, expected in ((0.1, codes), (0.4, codes), (0.6, codes + 1), (0.9, codes + 1), (-0.4, codes)):
        values = torch.from_numpy((codes + offset) / peak).float()[None]
        tensor_to_frame(values, frame)
        np.testing.assert_array_equal(np.asarray(frame[0]), np.clip(expected, 0, peak), err_msg=f"offset {offset}")


@pytest.mark.parametrize("fmt_id", [vs.GRAY8, vs.GRAY10, vs.GRAY12, vs.GRAY16])
def test_tensor_to_frame_clamps_out_of_range(fmt_id: int) -> None:
    fmt = core.get_video_format(fmt_id)
    peak = (1 << fmt.bits_per_sample) - 1
    values = torch.tensor(
        [-1e30, -5.0, -0.25, -1e-9, 0.0, 1.0, 1.0 + 1e-6, 1.25, 40.0, 1e30, float("inf"), float("-inf")]
    )
    frame = core.std.BlankClip(format=fmt_id, width=values.numel(), height=1).get_frame(0).copy()
    tensor_to_frame(values.reshape(1, 1, -1), frame)
    assert np.asarray(frame[0]).tolist() == [[0, 0, 0, 0, 0, peak, peak, peak, peak, peak, peak, 0]]


# --------------------------------------------------------------------------------------------------
# stacking and plane order


def test_stacking_shape_and_plane_order() -> None:
    width, height, count = 50, 6, 4
    rng = np.random.default_rng(7)
    data = [[rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(3)] for _ in range(count)]
    clip = pattern_clip(vs.RGB24, width, height, data)
    frames = [clip.get_frame(n) for n in range(count)]
    assert_rows_padded(frames[0])

    tensor = frames_to_tensor(frames, planes=(2, 1, 0))
    assert tensor.shape == (count, 3, height, width)
    for t in range(count):
        for c, p in enumerate((2, 1, 0)):
            np.testing.assert_array_equal(tensor[t, c].numpy(), data[t][p].astype(np.float32))

    one = frames_to_tensor(frames[1:3], planes=[1])
    assert one.shape == (2, 1, height, width)
    np.testing.assert_array_equal(one[:, 0].numpy(), np.stack([data[1][1], data[2][1]]).astype(np.float32))

    # and back, in the same order: plane 2 gets channel 0
    out = frames[0].copy()
    tensor_to_frame(tensor[3] / 255.0, out, planes=(2, 1, 0))
    for p in range(3):
        np.testing.assert_array_equal(np.asarray(out[p]), data[3][p])
    # writing a subset leaves the other planes alone
    out = frames[0].copy()
    tensor_to_frame(tensor[2, :1] / 255.0, out, planes=[2])
    np.testing.assert_array_equal(np.asarray(out[2]), data[2][2])
    np.testing.assert_array_equal(np.asarray(out[0]), data[0][0])
    np.testing.assert_array_equal(np.asarray(out[1]), data[0][1])


def test_subsampled_chroma_planes_read_alone() -> None:
    width, height = 68, 10  # chroma 34 x 5, padded
    rng = np.random.default_rng(3)
    data = [[rng.integers(0, 1024, (h, w), dtype=np.uint16) for (h, w) in ((10, 68), (5, 34), (5, 34))]]
    frame = pattern_clip(vs.YUV420P10, width, height, data).get_frame(0)
    assert_rows_padded(frame)
    chroma = frames_to_tensor([frame], planes=(1, 2), scale=sample_scale(frame.format))
    assert chroma.shape == (1, 2, 5, 34)
    out = frame.copy()
    tensor_to_frame(chroma[0].flip(0), out, planes=(1, 2))
    np.testing.assert_array_equal(np.asarray(out[1]), data[0][2])
    np.testing.assert_array_equal(np.asarray(out[2]), data[0][1])


def test_dtype_argument() -> None:
    frame = pattern_clip(vs.GRAY16, 34, 2, [[np.full((2, 34), 65535, np.uint16)]]).get_frame(0)
    t64 = frames_to_tensor([frame], dtype=torch.float64, scale=sample_scale(frame.format))
    assert t64.dtype == torch.float64
    assert float(t64.max()) == pytest.approx(1.0, abs=1e-7)


# --------------------------------------------------------------------------------------------------
# shape errors


def test_planes_of_different_sizes_are_refused() -> None:
    frame = core.std.BlankClip(format=vs.YUV420P8, width=34, height=6).get_frame(0)
    with pytest.raises(ValueError):
        frames_to_tensor([frame])  # luma 6x34, chroma 3x17


def test_frames_of_different_sizes_are_refused() -> None:
    a = core.std.BlankClip(format=vs.GRAY8, width=34, height=6).get_frame(0)
    b = core.std.BlankClip(format=vs.GRAY8, width=34, height=8).get_frame(0)
    for frames in ([a, b], [b, a]):
        with pytest.raises(ValueError):
            frames_to_tensor(frames)


@pytest.mark.parametrize("shape", [(6, 34), (1, 1, 6, 34), (2, 6, 34), (3, 6, 34)])
def test_tensor_with_wrong_rank_or_channels_is_refused(shape: tuple[int, ...]) -> None:
    frame = core.std.BlankClip(format=vs.GRAY8, width=34, height=6).get_frame(0).copy()
    with pytest.raises(ValueError, match="expected a"):
        tensor_to_frame(torch.zeros(shape), frame)


def test_tensor_with_wrong_channels_for_planes_is_refused() -> None:
    frame = core.std.BlankClip(format=vs.RGB24, width=34, height=6).get_frame(0).copy()
    with pytest.raises(ValueError, match="C=2"):
        tensor_to_frame(torch.zeros(3, 6, 34), frame, planes=(0, 1))


@pytest.mark.parametrize("shape", [(1, 7, 34), (1, 6, 33), (1, 12, 68), (1, 5, 34)])
def test_tensor_with_wrong_height_or_width_is_refused(shape: tuple[int, ...]) -> None:
    frame = core.std.BlankClip(format=vs.GRAY8, width=34, height=6).get_frame(0).copy()
    with pytest.raises(ValueError, match="34x6"):
        tensor_to_frame(torch.zeros(shape), frame)


@pytest.mark.parametrize("shape", [(1, 1, 34), (1, 6, 1), (1, 1, 1)])
def test_broadcastable_tensor_is_refused(shape: tuple[int, ...]) -> None:
    """torch's copy_ would broadcast these over the plane; they must be refused, the frame untouched."""
    frame = core.std.BlankClip(format=vs.GRAY8, width=34, height=6).get_frame(0).copy()
    with pytest.raises(ValueError):
        tensor_to_frame(torch.full(shape, 0.5), frame)
    assert (np.asarray(frame[0]) == 0).all()


@pytest.mark.parametrize("other_size", [(34, 1), (1, 6), (1, 1)])
def test_broadcastable_frame_sizes_are_refused(other_size: tuple[int, int]) -> None:
    """numpy would broadcast a 1-row or 1-column plane into the staging slot; it must be refused."""
    a = core.std.BlankClip(format=vs.GRAY8, width=34, height=6).get_frame(0)
    b = core.std.BlankClip(format=vs.GRAY8, width=other_size[0], height=other_size[1]).get_frame(0)
    with pytest.raises(ValueError):
        frames_to_tensor([a, b])


def test_broadcastable_chroma_is_refused() -> None:
    frame = core.std.BlankClip(format=vs.YUV420P8, width=2, height=2).get_frame(0)  # chroma 1x1
    with pytest.raises(ValueError):
        frames_to_tensor([frame])


# --------------------------------------------------------------------------------------------------
# reduced-precision reads


def test_bfloat16_and_float64_reads_of_8_bit() -> None:
    data = np.arange(256, dtype=np.uint8).reshape(8, 32)
    data = np.concatenate([data, np.zeros((8, 2), np.uint8)], axis=1)  # width 34, padded rows
    frame = pattern_clip(vs.GRAY8, 34, 8, [[data]]).get_frame(0)
    for dtype in (torch.float16, torch.bfloat16):
        t = frames_to_tensor([frame], scale=sample_scale(frame.format), dtype=dtype)
        assert t.dtype == dtype
        assert torch.isfinite(t).all()
        # within one half-precision ulp of v / 255 (relative 2^-8 for bfloat16, 2^-11 for float16)
        rel = 2.0**-7 if dtype is torch.bfloat16 else 2.0**-10
        np.testing.assert_allclose(t[0, 0].double().numpy(), data / 255.0, rtol=rel, atol=0)


def test_float16_read_of_16_bit_samples_stays_finite() -> None:
    data = np.full((2, 34), 65535, np.uint16)
    data[0, :6] = [0, 1, 32768, 65504, 65519, 65520]
    frame = pattern_clip(vs.GRAY16, 34, 2, [[data]]).get_frame(0)
    t = frames_to_tensor([frame], scale=sample_scale(frame.format), dtype=torch.float16)
    assert t.dtype == torch.float16
    assert torch.isfinite(t).all()
    # one rounding of v / 65535 into float16: within half a float16 ulp at 1.0 (2^-11)
    np.testing.assert_allclose(t[0, 0].double().numpy(), data / 65535.0, rtol=0, atol=2.0**-11)
