"""vsrestore.msitf: frame counts, rates, durations, cuts, caching, formats, bad input."""
from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

import vsrestore
from standins import assert_same_bytes_in_any_order, frame_bytes
from vsrestore.networks.msitf import MSITF, MSITFConfig

core = vs.core


class Blender(torch.nn.Module):
    """Stand-in for MSITF: output 2k is input k, output 2k+1 the mean of inputs k and k+1, x4 nearest
    (7 outputs from 4 inputs; 2N-1 from N)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.calls += 1
        frames = []
        for p in range(2 * x.shape[1] - 1):
            k, mid = divmod(p, 2)
            f = x[:, k] if not mid else (x[:, k] + x[:, k + 1]) / 2
            frames.append(F.interpolate(f, scale_factor=4, mode="nearest"))
        return torch.stack(frames, 1)


def level_clip(length: int, cuts=(), fpsnum=24000, fpsden=1001, fmt=vs.RGB24) -> vs.VideoNode:
    """Frame k is flat at 10*k (x 2^(bits-8); YUV chroma neutral), with a Marker prop and scene flags."""
    blank = core.std.BlankClip(format=fmt, width=16, height=16, length=length, fpsnum=fpsnum, fpsden=fpsden)

    def fill(n, f):
        out = f.copy()
        shift = out.format.bits_per_sample - 8
        for p in range(out.format.num_planes):
            neutral_chroma = p and out.format.color_family == vs.YUV
            np.asarray(out[p]).fill((128 if neutral_chroma else 10 * n % 250) << shift)
        out.props["Marker"] = n
        out.props["_SceneChangeNext"] = int(n in cuts)
        out.props["_SceneChangePrev"] = int(n - 1 in cuts)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def levels(node: vs.VideoNode) -> list[float]:
    return [float(np.asarray(f[0])[0, 0]) for f in node.frames()]


def test_output_frames_are_sources_and_midpoints():
    out = vsrestore.msitf(level_clip(8), model=Blender())
    assert (out.width, out.height, out.num_frames, out.format.id) == (64, 64, 15, vs.RGB24)
    assert levels(out) == [5 * m for m in range(15)]


def test_cut_midpoint_repeats_the_last_frame_of_the_scene():
    out = vsrestore.msitf(level_clip(8, cuts={3}), model=Blender())
    got = levels(out)
    assert got[6] == 30 and got[7] == 30 and got[8] == 40  # no blend of frames 3 and 4
    assert got[5] == 25 and got[9] == 45
    flags = [(f.props["_SceneChangePrev"], f.props["_SceneChangeNext"]) for f in out.frames()]
    assert flags[6] == (0, 0) and flags[7] == (0, 1) and flags[8] == (1, 0)


@pytest.mark.parametrize(
    "fps, length, frames, rate",
    [((24000, 1001), "2n-1", 13, Fraction(48000, 1001)), ((25, 1), "2n-1", 13, Fraction(50)),
     ((24000, 1001), "2n", 14, Fraction(48000, 1001))],
)
def test_counts_rates_durations_and_props(fps, length, frames, rate):
    clip = core.std.SetFrameProps(level_clip(7, fpsnum=fps[0], fpsden=fps[1]), _Transfer=1, _Primaries=1)
    out = vsrestore.msitf(clip, model=Blender(), length=length)
    assert out.num_frames == frames
    assert Fraction(out.fps.numerator, out.fps.denominator) == rate
    for m, f in enumerate(out.frames()):
        assert Fraction(f.props["_DurationNum"], f.props["_DurationDen"]) == 1 / rate
        assert f.props["Marker"] == min(m // 2, 6)
        assert (f.props["_Transfer"], f.props["_Primaries"]) == (1, 1)
    if length == "2n":
        assert frame_bytes(out.get_frame(13)) == frame_bytes(out.get_frame(12))


def test_yuv_round_trip_keeps_family_depth_and_colour_props():
    clip = core.std.SetFrameProps(level_clip(5, fmt=vs.YUV420P10), _Matrix=1, _Range=0, _ChromaLocation=0)
    out = vsrestore.msitf(clip, model=Blender())
    assert out.format.id == vs.YUV420P10 and (out.width, out.height) == (64, 64)
    f = out.get_frame(4)
    assert (f.props["_Matrix"], f.props["_Range"], f.props["_ChromaLocation"], f.props["Marker"]) == (1, 0, 0, 2)
    assert abs(float(np.asarray(f[0])[10, 10]) - 80) <= 1  # flat 10*2 << 2, through RGB and back
    assert vsrestore.msitf(clip, model=Blender(), out_depth=32).format.id == vs.YUV420PS


def test_each_window_runs_once_and_any_order_gives_identical_bytes():
    clip = level_clip(22, cuts={9})
    net = Blender()
    reference = [frame_bytes(f) for f in vsrestore.msitf(clip, model=net).frames()]
    # 0-3, 3-6, 6-9 | cut | 10-13 (starts the scene), 12-15, 15-18, 18-21 (aligned to the end)
    assert net.calls == 7
    net2 = Blender()
    assert_same_bytes_in_any_order(vsrestore.msitf(clip, model=net2, num_streams=2), reference, seed=5)


def test_window_length_comes_from_the_network_config():
    net = Blender()
    net.config = MSITFConfig(input_frames=3)  # 5 outputs from 3 inputs, windows at stride 2
    got = levels(vsrestore.msitf(level_clip(8, cuts={3}), model=net))
    assert got == [0, 5, 10, 15, 20, 25, 30, 30, 40, 45, 50, 55, 60, 65, 70]  # cut: output 7 repeats frame 3
    # 0-2, 1-3 (the end of the first scene), 4-6 (the start of the next), 5-7 (the clip's end)
    assert net.calls == 4


def test_long_clip_infers_each_window_once():
    net = Blender()
    for _ in vsrestore.msitf(level_clip(301), model=net).frames():
        pass
    assert net.calls == 100  # windows start at 0, 3, ..., 297: no window is ever recomputed


def test_real_network_tiny_config_runs_and_tiles():
    torch.manual_seed(0)
    net = MSITF(MSITFConfig(features=8, deform_groups=2, front_blocks=1, temporal_heads=2, trunk_layers=1,
                            trunk_blocks=2, trunk_heads=2, cpb_hidden=16))
    clip = level_clip(4, fmt=vs.RGBS)
    whole = np.asarray(vsrestore.msitf(clip, model=net).get_frame(3)[1])
    tiled = np.asarray(vsrestore.msitf(clip, model=net, tile=16, overlap=8).get_frame(3)[1])
    assert whole.shape == (64, 64) and np.isfinite(whole).all()
    assert np.array_equal(whole, tiled)  # one 16x16 tile covers the frame: same computation


@pytest.mark.parametrize(
    "clip, kwargs, match",
    [
        (lambda: level_clip(5, fpsnum=0, fpsden=1), {}, "variable frame rate"),
        (lambda: core.std.BlankClip(format=vs.RGB24, width=12, height=16, length=5), {}, "at least 16x16"),
        (lambda: core.std.BlankClip(format=vs.GRAY8, width=16, height=16, length=5), {}, "must be YUV, RGB"),
        (lambda: level_clip(5), {"length": "3n"}, "length must be"),
        (lambda: level_clip(5), {"out_depth": 7}, "out_depth must be one of"),
        (lambda: level_clip(5), {"model": "nope"}, "neither a file nor a shipped model"),
        (lambda: level_clip(5), {"num_streams": 0}, "num_streams"),
    ],
)
def test_bad_input(clip, kwargs, match):
    with pytest.raises(vs.Error, match=match):
        vsrestore.msitf(clip(), **{"model": Blender(), **kwargs})


@pytest.mark.parametrize("fmt", [vs.RGBH, vs.RGBS, vs.RGB30, vs.YUV444PH])
def test_default_output_keeps_the_input_format(fmt):
    out = vsrestore.msitf(core.std.BlankClip(format=fmt, width=16, height=16, length=3), model=Blender())
    assert out.format.id == fmt
    assert out.get_frame(2).format.id == fmt
