"""vsrestore.mstfn: formats, windows, Stage-I reuse, tiling, colour, bad input."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsrestore
from standins import frame_bytes
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig

core = vs.core
W, H = 48, 32


@pytest.fixture(scope="module")
def net() -> MSTFN:
    torch.manual_seed(1)
    model = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1))
    # Random init gives an almost-zero residual; make it visible so wrong windows change the output.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval()


def noise_clip(fmt: int = vs.RGB48, length: int = 8, seed: int = 0, cuts=()) -> vs.VideoNode:
    rng = np.random.default_rng(seed)
    blank = core.std.BlankClip(format=fmt, width=W, height=H, length=length, fpsnum=30000, fpsden=1001)
    peak = (1 << blank.format.bits_per_sample) - 1
    data = rng.integers(0, peak + 1, size=(length, 3, H, W))

    def fill(n, f):
        out = f.copy()
        for p in range(out.format.num_planes):
            plane = np.asarray(out[p])
            plane[:] = data[n, p, : plane.shape[0], : plane.shape[1]]
        out.props["_SceneChangeNext"] = int(n in cuts)
        out.props["_Transfer"] = 1
        out.props["Marker"] = n
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def rgb_tensor(frame: vs.VideoFrame, bits: int) -> torch.Tensor:
    """B, G, R planes MSB-aligned in [0, 1], the authors' input convention."""
    planes = [np.asarray(frame[p]).astype(np.float64) * (1 << (16 - bits)) / 65535 for p in (2, 1, 0)]
    return torch.from_numpy(np.stack(planes)).float()


def expected_rgb48(net: MSTFN, clip: vs.VideoNode, n: int, window: list[int]) -> np.ndarray:
    x = torch.cat([rgb_tensor(clip.get_frame(i), clip.format.bits_per_sample) for i in window])[None]
    with torch.inference_mode():
        y = net(x)[0]
    return np.round(y.numpy()[[2, 1, 0]].astype(np.float64) * 65535).astype(np.uint16)


def planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def test_rgb48_matches_the_network_on_clamped_and_cut_windows(net):
    clip = noise_clip(length=7, cuts={3})
    out = vsrestore.mstfn(clip, model=net, out_depth=16, precision="fp32")  # the reference runs fp32
    assert out.format.id == vs.RGB48 and out.num_frames == 7
    windows = {0: [0, 0, 0, 1, 2], 2: [0, 1, 2, 3, 3], 3: [1, 2, 3, 3, 3], 4: [4, 4, 4, 5, 6], 6: [4, 5, 6, 6, 6]}
    for n, window in windows.items():
        got = planes(out.get_frame(n)).astype(int)
        assert np.abs(got - expected_rgb48(net, clip, n, window)).max() <= 1, n


@pytest.mark.parametrize(
    "src, depth, fmt",
    [
        (vs.YUV420P8, 16, vs.YUV420P16),
        (vs.YUV420P8, 10, vs.YUV420P10),
        (vs.YUV444P10, 12, vs.YUV444P12),
        (vs.YUV422P8, 32, vs.YUV422PS),
        (vs.RGB24, 16, vs.RGB48),
        (vs.RGB24, 32, vs.RGBS),
    ],
)
def test_output_format_length_rate_and_props(net, src, depth, fmt):
    clip = core.std.SetFrameProps(noise_clip(src, length=4), _Matrix=1, _Range=0, _ChromaLocation=2, _Primaries=1)
    out = vsrestore.mstfn(clip, model=net, out_depth=depth)
    assert out.format.id == fmt
    assert (out.width, out.height, out.num_frames) == (W, H, 4)
    assert out.fps == clip.fps
    for n in range(4):
        assert dict(out.get_frame(n).props) == dict(clip.get_frame(n).props)


def test_identity_network_equals_a_plain_depth_conversion():
    idle = MSTFN(MSTFNConfig(features=4, num_rpb=0, num_tail=0))
    for p in idle.parameters():
        torch.nn.init.zeros_(p)
    rgb = noise_clip(vs.RGB24, length=2)
    got = planes(vsrestore.mstfn(rgb, model=idle, out_depth=16).get_frame(1)).astype(int)
    assert np.array_equal(got, planes(rgb.get_frame(1)).astype(int) << 8)  # MSB-aligned
    as_float = planes(vsrestore.mstfn(rgb, model=idle, out_depth=32).get_frame(1))
    assert np.allclose(as_float, planes(rgb.get_frame(1)) / 255.0, atol=1e-6)
    truncated = planes(vsrestore.mstfn(rgb, model=idle, out_depth=16, in_bits=4).get_frame(1)).astype(int)
    assert np.array_equal(truncated, (planes(rgb.get_frame(1)).astype(int) >> 4) << 12)


def test_stage1_reuse_equals_no_reuse_in_any_order(net):
    clip = noise_clip(length=9, cuts={4})
    plain = [frame_bytes(f) for f in vsrestore.mstfn(clip, model=net, stage1_cache=False).frames()]
    cached = vsrestore.mstfn(clip, model=net, num_streams=2)
    order = list(range(9)) * 2
    random.Random(3).shuffle(order)
    assert [frame_bytes(cached.get_frame(n)) for n in order] == [plain[n] for n in order]


def test_tiled_equals_untiled_when_overlap_covers_the_receptive_field(net):
    clip = noise_clip(length=3)
    radius = net.receptive_radius
    whole = planes(vsrestore.mstfn(clip, model=net, out_depth=32).get_frame(1))
    tiled = planes(vsrestore.mstfn(clip, model=net, out_depth=32, tile=16, overlap=radius).get_frame(1))
    assert np.abs(whole - tiled).max() < 1e-5
    seams = planes(vsrestore.mstfn(clip, model=net, out_depth=32, tile=16, overlap=0).get_frame(1))
    assert np.abs(whole - seams).max() > 1e-3


def test_contract_mismatch_warns_once(net, tmp_path):
    path = vsrestore.models.save(net, tmp_path / "eight.safetensors", {"in_bits": 8})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = vsrestore.mstfn(noise_clip(vs.RGB24, length=3), model=path, in_bits=6)
        for _ in out.frames():
            pass
    assert len([w for w in caught if "significant input bits" in str(w.message)]) == 1


def test_library_prints_nothing_on_stdout(net, capfd):
    for _ in vsrestore.mstfn(noise_clip(vs.YUV420P8, length=3), model=net).frames():
        pass
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, clip, match",
    [
        ({}, lambda: noise_clip(vs.RGBS), "integer samples"),
        ({}, lambda: core.std.BlankClip(format=vs.GRAY8, width=W, height=H), "must be YUV, RGB"),
        ({"in_bits": 9}, lambda: noise_clip(vs.RGB24), "in_bits must be one of 1..8"),
        ({"in_bits": 0}, lambda: noise_clip(vs.RGB24), "in_bits"),
        ({"out_depth": 8}, lambda: noise_clip(vs.RGB24), "out_depth must be one of 10, 12, 16, 32"),
        ({}, lambda: core.std.BlankClip(format=vs.RGB24, width=8, height=40), "at least 16x16"),
        ({}, lambda: core.std.Splice([noise_clip(vs.RGB24), core.std.BlankClip(format=vs.RGB48, width=W, height=H)], mismatch=True), "constant format"),
        ({"tile": 4}, lambda: noise_clip(vs.RGB24), "tile must be"),
        ({"overlap": -1}, lambda: noise_clip(vs.RGB24), "overlap must be"),
        ({"device": "tpu"}, lambda: noise_clip(vs.RGB24), "device must be"),
        ({"precision": "fp16"}, lambda: noise_clip(vs.RGB24), "precision"),
        ({"model": 3}, lambda: noise_clip(vs.RGB24), "model must be"),
        ({"model": torch.nn.Conv2d(3, 3, 1)}, lambda: noise_clip(vs.RGB24), "model must be an MSTFN"),
        ({"model": "no-such-model"}, lambda: noise_clip(vs.RGB24), "neither a file nor a shipped model"),
        ({"num_streams": 0}, lambda: noise_clip(vs.RGB24), "num_streams"),
    ],
)
def test_bad_input_names_the_parameter(net, kwargs, clip, match):
    kwargs = {"model": net, **kwargs}
    with pytest.raises(vs.Error, match=match):
        vsrestore.mstfn(clip(), **kwargs)


def test_no_model_and_none_shipped_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.setenv("VSRESTORE_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("vsrestore.models.shipped.WEIGHTS_DIR", tmp_path)
    with pytest.raises(vs.Error, match="no shipped MSTFN model for in_bits=8.*pass model="):
        vsrestore.mstfn(noise_clip(vs.RGB24))


@pytest.mark.filterwarnings("ignore:.*the model was trained for")  # the other models, on purpose
@pytest.mark.parametrize("bits", [4, 6, 8])
def test_default_model_is_the_shipped_one_for_in_bits(bits):
    # Real shipped weights: model=None must load mstfn_<bits>bit, not merely some MSTFN.
    from vsrestore.models import shipped

    assert [e.name for e in shipped.find("mstfn", in_bits=bits)] == [f"mstfn_{bits}bit"]
    clip = noise_clip(vs.RGB24, length=1)
    out = {name: vsrestore.mstfn(clip, in_bits=bits, model=name, precision="fp32").get_frame(0)
           for name in (None, "mstfn_4bit", "mstfn_6bit", "mstfn_8bit")}
    own = f"mstfn_{bits}bit"
    assert frame_bytes(out[None]) == frame_bytes(out[own])
    assert all(frame_bytes(out[None]) != frame_bytes(out[other]) for other in out if other not in (None, own))
