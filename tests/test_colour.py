"""Colour props and YUV <-> RGB conversions: vsrestore.bridge.colour on real VapourSynth clips."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import vapoursynth as vs

from vsrestore.bridge.colour import (
    MATRIX_BT470BG,
    MATRIX_BT709,
    MATRIX_RGB,
    MATRIX_ST170M,
    RANGE_FULL,
    RANGE_LIMITED,
    ColourInfo,
    from_rgb,
    read_colour,
    to_rgb,
)

core = vs.core


# --------------------------------------------------------------------------------------------------
# helpers


def pattern_clip(fmt: int, width: int, height: int, make, length: int = 1) -> vs.VideoNode:
    """Plane p of frame n holds ``make(n, p, shape, dtype)`` (must be deterministic)."""
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length)

    def write(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(out.format.num_planes):
            view = np.asarray(out[p])
            view[...] = make(n, p, view.shape, view.dtype)
        return out

    return core.std.ModifyFrame(blank, blank, write)


def smooth_yuv(n: int, p: int, shape: tuple[int, int], dtype) -> np.ndarray:
    """Slow sinusoids (in each plane's own sample grid), inside the limited range."""
    peak_scale = 1 << (8 * np.dtype(dtype).itemsize - 8) if np.dtype(dtype).itemsize > 1 else 1
    y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    if p == 0:
        v = 126 + 80 * np.sin(2 * np.pi * x / 80 + n) * np.cos(2 * np.pi * y / 64)
    elif p == 1:
        v = 128 + 40 * np.cos(2 * np.pi * (x + y) / 48 + n)
    else:
        v = 128 + 35 * np.sin(2 * np.pi * (x - 2 * y) / 56)
    return np.rint(v * peak_scale).astype(dtype)


def random_yuv16(n: int, p: int, shape: tuple[int, int], dtype) -> np.ndarray:
    rng = np.random.default_rng(100 * n + p)
    high = 60160 if p == 0 else 61440  # 235 << 8, 240 << 8
    return rng.integers(4096, high, shape, endpoint=True).astype(dtype)


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[p], copy=True) for p in range(frame.format.num_planes)]


def max_code_error(a: vs.VideoFrame, b: vs.VideoFrame) -> int:
    return max(
        int(np.abs(x.astype(np.int64) - y.astype(np.int64)).max()) for x, y in zip(planes(a), planes(b))
    )


def set_props_quietly(clip: vs.VideoNode, **props) -> vs.VideoNode:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # _ColorRange
        return core.std.SetFrameProps(clip, **props)


# --------------------------------------------------------------------------------------------------
# ColourInfo.default_for


@pytest.mark.parametrize(
    "width, height, matrix",
    [
        (1920, 1080, MATRIX_BT709),
        (1280, 536, MATRIX_BT709),  # wide enough
        (960, 720, MATRIX_BT709),  # high enough
        (1278, 718, MATRIX_ST170M),
        (720, 576, MATRIX_ST170M),
        (640, 480, MATRIX_ST170M),
    ],
)
def test_default_for_yuv(width: int, height: int, matrix: int) -> None:
    clip = core.std.BlankClip(format=vs.YUV420P8, width=width, height=height)
    assert ColourInfo.default_for(clip) == ColourInfo(matrix=matrix, range=RANGE_LIMITED, chromaloc=0)


def test_default_values_are_the_standard_codes() -> None:
    assert (MATRIX_RGB, MATRIX_BT709, MATRIX_BT470BG, MATRIX_ST170M) == (0, 1, 5, 6)
    assert (RANGE_LIMITED, RANGE_FULL) == (0, 1)
    assert int(vs.RANGE_LIMITED) == RANGE_LIMITED and int(vs.RANGE_FULL) == RANGE_FULL


@pytest.mark.parametrize("width, height", [(1920, 1080), (640, 480)])
def test_default_for_rgb(width: int, height: int) -> None:
    for fmt in (vs.RGB24, vs.RGBS):
        clip = core.std.BlankClip(format=fmt, width=width, height=height)
        assert ColourInfo.default_for(clip) == ColourInfo(matrix=MATRIX_RGB, range=RANGE_FULL, chromaloc=0)


# --------------------------------------------------------------------------------------------------
# ColourInfo.from_props and read_colour


FALLBACK = ColourInfo(matrix=MATRIX_ST170M, range=RANGE_LIMITED, chromaloc=0)


@pytest.mark.parametrize(
    "props, expected",
    [
        ({}, FALLBACK),
        ({"_Matrix": 1}, ColourInfo(1, RANGE_LIMITED, 0)),
        ({"_Matrix": 5}, ColourInfo(5, RANGE_LIMITED, 0)),
        ({"_Matrix": 2}, FALLBACK),  # unspecified counts as missing
        ({"_Matrix": 2, "_Range": 1}, ColourInfo(MATRIX_ST170M, RANGE_FULL, 0)),
        ({"_Range": 1}, ColourInfo(MATRIX_ST170M, RANGE_FULL, 0)),
        ({"_Range": 0}, FALLBACK),
        ({"_ColorRange": 0}, ColourInfo(MATRIX_ST170M, RANGE_FULL, 0)),  # deprecated: 0 is full
        ({"_ColorRange": 1}, ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)),
        ({"_Range": 0, "_ColorRange": 0}, FALLBACK),  # _Range wins
        ({"_Range": 1, "_ColorRange": 1}, ColourInfo(MATRIX_ST170M, RANGE_FULL, 0)),
        ({"_ChromaLocation": 2}, ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 2)),
        ({"_Matrix": 1, "_Range": 1, "_ChromaLocation": 1}, ColourInfo(1, 1, 1)),
    ],
)
def test_from_props_dict(props: dict, expected: ColourInfo) -> None:
    assert ColourInfo.from_props(props, FALLBACK) == expected


def test_from_props_full_range_fallback() -> None:
    fallback = ColourInfo(matrix=MATRIX_BT709, range=RANGE_FULL, chromaloc=2)
    assert ColourInfo.from_props({"_Range": 0}, fallback) == ColourInfo(MATRIX_BT709, RANGE_LIMITED, 2)
    assert ColourInfo.from_props({"_ColorRange": 1}, fallback) == ColourInfo(MATRIX_BT709, RANGE_LIMITED, 2)
    assert ColourInfo.from_props({"_Matrix": 2}, fallback) == fallback


def test_from_props_of_real_frames() -> None:
    base = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48)
    cases = [
        (set_props_quietly(base, _Matrix=5, _Range=1, _ChromaLocation=2), ColourInfo(5, RANGE_FULL, 2)),
        (set_props_quietly(base, _ColorRange=0), ColourInfo(MATRIX_ST170M, RANGE_FULL, 0)),
        (set_props_quietly(base, _ColorRange=1), ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)),
        (set_props_quietly(base, _Matrix=2), FALLBACK),
    ]
    for clip, expected in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert ColourInfo.from_props(clip.get_frame(0).props, FALLBACK) == expected


def test_read_colour_defaults_and_first_frame_props() -> None:
    sd = core.std.BlankClip(format=vs.YUV420P8, width=640, height=480, length=3)
    hd = core.std.BlankClip(format=vs.YUV420P10, width=1280, height=720, length=3)
    assert read_colour(sd) == ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)
    assert read_colour(hd) == ColourInfo(MATRIX_BT709, RANGE_LIMITED, 0)
    assert read_colour(core.std.BlankClip(format=vs.RGB24, width=640, height=480)) == ColourInfo(
        MATRIX_RGB, RANGE_FULL, 0
    )

    assert read_colour(set_props_quietly(sd, _Matrix=1, _ColorRange=0)) == ColourInfo(1, RANGE_FULL, 0)
    assert read_colour(set_props_quietly(hd, _Matrix=5, _Range=1, _ChromaLocation=2)) == ColourInfo(5, 1, 2)
    assert read_colour(set_props_quietly(hd, _Matrix=2)) == ColourInfo(MATRIX_BT709, RANGE_LIMITED, 0)

    # only the first frame's props count
    later = sd[0] + set_props_quietly(sd[1:], _Matrix=1, _Range=1)
    assert read_colour(later) == ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)


def test_read_colour_does_not_leak_deprecation_warnings() -> None:
    clip = set_props_quietly(core.std.BlankClip(format=vs.YUV420P8, width=64, height=48), _ColorRange=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_colour(clip).range == RANGE_FULL


# --------------------------------------------------------------------------------------------------
# to_rgb / from_rgb


@pytest.mark.parametrize("matrix, rng", [(1, 0), (1, 1), (6, 0), (6, 1), (5, 0)])
def test_yuv444p16_round_trip_through_rgbs(matrix: int, rng: int) -> None:
    src = set_props_quietly(
        pattern_clip(vs.YUV444P16, 50, 20, random_yuv16, length=2), _Matrix=matrix, _Range=rng
    )
    colour = read_colour(src)
    assert colour == ColourInfo(matrix, rng, 0)
    rgb = to_rgb(src, vs.RGBS, colour)
    assert rgb.format.id == vs.RGBS
    back = from_rgb(rgb, vs.YUV444P16, colour)
    assert back.format.id == vs.YUV444P16
    for n in range(2):
        assert max_code_error(back.get_frame(n), src.get_frame(n)) <= 1  # of 65535

    # the tolerance is meaningful: going back with another matrix is far off
    other = ColourInfo(MATRIX_BT709 if matrix != MATRIX_BT709 else MATRIX_ST170M, rng, 0)
    assert max_code_error(from_rgb(rgb, vs.YUV444P16, other).get_frame(0), src.get_frame(0)) > 256


def test_yuv420p8_smooth_round_trip_through_rgbs() -> None:
    src = pattern_clip(vs.YUV420P8, 128, 96, smooth_yuv, length=2)  # SD: ST 170M, limited
    colour = read_colour(src)
    assert colour == ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)
    rgb = to_rgb(src, vs.RGBS, colour)
    rgb_frame = rgb.get_frame(0)
    assert (rgb_frame.width, rgb_frame.height) == (128, 96)  # chroma upsampled to full size
    back = from_rgb(rgb, vs.YUV420P8, colour)
    for n in range(2):
        # bicubic chroma up- then down-sampling of a smooth pattern: at most 1 code of 255
        assert max_code_error(back.get_frame(n), src.get_frame(n)) <= 1


def test_forward_conversion_values() -> None:
    """to_rgb is the resizer with the ColourInfo as *_in arguments (checked against a direct call)."""
    src = pattern_clip(vs.YUV420P8, 128, 96, smooth_yuv)
    colour = ColourInfo(MATRIX_BT470BG, RANGE_FULL, 0)
    ours = to_rgb(src, vs.RGBS, colour).get_frame(0)
    ref = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=5, range_in=1, chromaloc_in=0).get_frame(0)
    for a, b in zip(planes(ours), planes(ref)):
        np.testing.assert_array_equal(a, b)
    limited = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=5, range_in=0).get_frame(0)
    assert not np.allclose(planes(ours)[0], planes(limited)[0], atol=1e-3)


def test_frame_matrix_prop_overrides_colour_default() -> None:
    base = pattern_clip(vs.YUV444P8, 64, 48, smooth_yuv, length=2)
    # frame 0 carries no matrix, frame 1 says BT.709
    src = base[0] + set_props_quietly(base[1], _Matrix=MATRIX_BT709)
    colour = ColourInfo.default_for(src)
    assert colour.matrix == MATRIX_ST170M
    rgb = to_rgb(src, vs.RGBS, colour)

    explicit_709 = core.resize.Bicubic(base, format=vs.RGBS, matrix_in=1, range_in=0)
    explicit_601 = core.resize.Bicubic(base, format=vs.RGBS, matrix_in=6, range_in=0)
    for a, b in zip(planes(rgb.get_frame(1)), planes(explicit_709.get_frame(1))):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(planes(rgb.get_frame(0)), planes(explicit_601.get_frame(0))):
        np.testing.assert_array_equal(a, b)
    # the two matrices really differ on this pattern
    diff = np.abs(planes(explicit_709.get_frame(1))[0] - planes(explicit_601.get_frame(1))[0]).max()
    assert diff > 0.01


def test_frame_range_prop_overrides_colour_default() -> None:
    base = pattern_clip(vs.YUV444P8, 64, 48, smooth_yuv)
    colour = ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)
    full_ref = core.resize.Bicubic(base, format=vs.RGBS, matrix_in=6, range_in=1).get_frame(0)
    for props in ({"_Range": 1}, {"_ColorRange": 0}):
        rgb = to_rgb(set_props_quietly(base, **props), vs.RGBS, colour).get_frame(0)
        for a, b in zip(planes(rgb), planes(full_ref)):
            np.testing.assert_array_equal(a, b, err_msg=str(props))


def test_rgb_input_passes_through() -> None:
    rng = np.random.default_rng(5)
    rgbs = pattern_clip(
        vs.RGBS, 50, 6, lambda n, p, shape, dt: np.random.default_rng(p).random(shape).astype(dt)
    )
    colour = ColourInfo(MATRIX_ST170M, RANGE_LIMITED, 0)  # must be ignored for RGB
    assert to_rgb(rgbs, vs.RGBS, colour) is rgbs
    assert from_rgb(rgbs, vs.RGBS, colour) is rgbs

    data = [rng.integers(0, 256, (6, 50), dtype=np.uint8) for _ in range(3)]
    rgb24 = pattern_clip(vs.RGB24, 50, 6, lambda n, p, shape, dt: data[p])
    as_float = to_rgb(rgb24, vs.RGBS, colour)
    assert as_float.format.id == vs.RGBS
    got = planes(as_float.get_frame(0))
    for p in range(3):
        # plain rescale to [0, 1], no matrix and no range squeeze
        np.testing.assert_allclose(got[p], data[p] / 255.0, rtol=0, atol=1e-7)
    back = from_rgb(as_float, vs.RGB24, colour).get_frame(0)
    for p in range(3):
        np.testing.assert_array_equal(np.asarray(back[p]), data[p])


def test_props_restored_after_copy_frame_props() -> None:
    base = pattern_clip(vs.YUV420P8, 128, 96, smooth_yuv, length=2)
    src = set_props_quietly(base, _Matrix=5, _Range=0, _ChromaLocation=0, MyTag=7, _SARNum=4, _SARDen=3)
    src = src[0] + set_props_quietly(src[1], Other=b"x")
    colour = read_colour(src)
    back = from_rgb(to_rgb(src, vs.RGBS, colour), vs.YUV420P8, colour)
    restored = core.std.CopyFrameProps(back, src)
    for n in range(2):
        before = dict(back.get_frame(n).props)
        assert before.get("_Transfer") is not None  # the resizer stamped props the source lacks
        s, r = dict(src.get_frame(n).props), dict(restored.get_frame(n).props)
        assert r == s
        assert int(r["_Matrix"]) == 5 and r["MyTag"] == 7
    assert "Other" in dict(restored.get_frame(1).props) and "Other" not in dict(restored.get_frame(0).props)
