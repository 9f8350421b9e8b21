"""vsrestore.stifn: residual contract, windows, planes, QP models, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsrestore
from standins import frame_bytes, frame_value, index_clip
from vsrestore.filters.stifn import default_model, nearest_qp
from vsrestore.networks.stifn import STIFN, PRESETS

core = vs.core


class OldestSlot(torch.nn.Module):
    """Stand-in: outputs the first frame of its 7-frame window."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


def noise_yuv(fmt=vs.YUV420P8, length=5, seed=0) -> vs.VideoNode:
    blank = core.std.BlankClip(format=fmt, width=48, height=32, length=length)
    peak = (1 << blank.format.bits_per_sample) - 1

    def fill(n, f):
        out = f.copy()
        rng = np.random.default_rng((seed, n))  # per frame: the same frame is the same on every request
        for p in range(out.format.num_planes):
            plane = np.asarray(out[p])
            plane[:] = rng.integers(0, peak + 1, size=plane.shape)
        out.props["Marker"] = n
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def planes(frame):
    return [np.asarray(frame[p]).copy() for p in range(frame.format.num_planes)]


def test_zero_network_is_the_identity_and_chroma_passes_through():
    zero = STIFN(PRESETS["r3"])
    for p in zero.parameters():
        torch.nn.init.zeros_(p)
    for fmt in (vs.YUV420P8, vs.YUV444P16, vs.GRAY10):
        clip = noise_yuv(fmt)
        out = vsrestore.stifn(clip, model=zero)
        assert out.format.id == fmt and out.num_frames == clip.num_frames and out.fps == clip.fps
        for n in range(clip.num_frames):
            got, src = out.get_frame(n), clip.get_frame(n)
            assert all(np.array_equal(a, b) for a, b in zip(planes(got), planes(src)))
            assert dict(got.props) == dict(src.props)


def test_random_network_changes_luma_only():
    clip = noise_yuv()
    out = vsrestore.stifn(clip, model=STIFN()).get_frame(2)
    got, src = planes(out), planes(clip.get_frame(2))
    assert not np.array_equal(got[0], src[0])
    assert np.array_equal(got[1], src[1]) and np.array_equal(got[2], src[2])


def test_windows_clamp_at_edges_and_cuts():
    clip = index_clip(9, cuts={4}, fmt=vs.GRAY16)
    out = vsrestore.stifn(clip, model=OldestSlot())
    assert [frame_value(f) for f in out.frames()] == [0, 0, 0, 0, 1, 5, 5, 5, 5]


def test_chroma_planes_on_request():
    clip = noise_yuv(vs.YUV420P8)
    out = vsrestore.stifn(clip, model=OldestSlot(), planes=[1, 2]).get_frame(4)
    assert np.array_equal(planes(out)[0], planes(clip.get_frame(4))[0])
    assert np.array_equal(planes(out)[1], planes(clip.get_frame(1))[1])


def test_tiled_equals_untiled():
    net = STIFN()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    clip = noise_yuv(vs.YUV420P16)
    whole = planes(vsrestore.stifn(clip, model=net).get_frame(2))[0].astype(int)
    tiled = planes(vsrestore.stifn(clip, model=net, tile=16, overlap=net.receptive_radius).get_frame(2))[0].astype(int)
    assert np.abs(whole - tiled).max() <= 1


@pytest.mark.parametrize("qp, expected", [(0, 22), (22, 22), (24, 22), (25, 27), (29, 27), (30, 32), (34, 32), (35, 37), (51, 37)])
def test_nearest_trained_qp(qp, expected):
    assert nearest_qp(qp, (22, 27, 32, 37)) == expected


def test_default_model_follows_qp_and_size(monkeypatch, tmp_path):
    from vsrestore.models import shipped

    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path)
    for qp in (22, 32):
        path = vsrestore.models.save(STIFN(PRESETS["r3l"]), tmp_path / f"stifn_r3l_qp{qp}.safetensors",
                                     {"qp": qp, "training": {"config": "r3l"}})
        shipped.add_to_manifest(path, vsrestore.models.read_checkpoint(path)[1], folder=tmp_path)
    out = vsrestore.stifn(noise_yuv(), qp=30, size="r3l")
    assert out.num_frames == 5
    assert [default_model(qp, "r3l") for qp in (20, 24, 30, 34)] == ["stifn_r3l_qp22", "stifn_r3l_qp22", "stifn_r3l_qp32", "stifn_r3l_qp32"]
    for qp in (19, 25, 27, 29, 35, 51):  # more than 2 QPs from both models: refused, with the way out
        with pytest.raises(vs.Error, match=rf"within 2 of qp={qp} \(trained QPs: 22, 32;.*model='stifn_r3l_qp"):
            vsrestore.stifn(noise_yuv(), qp=qp, size="r3l")
    assert vsrestore.stifn(noise_yuv(), qp=27, size="r3l", model="stifn_r3l_qp22").num_frames == 5
    with pytest.raises(vs.Error, match="no shipped STIFN model for size='r3'"):
        vsrestore.stifn(noise_yuv(), qp=37, size="r3")


def test_default_model_is_the_shipped_qp37_one():
    # Real shipped weights: qp=37 (the default) must load stifn_qp37, and it must change the frame.
    from vsrestore.models import shipped

    assert [e.name for e in shipped.find("stifn", qp=37)] == ["stifn_qp37"]
    clip = noise_yuv(length=7)
    default = vsrestore.stifn(clip, precision="fp32").get_frame(3)
    named = vsrestore.stifn(clip, model="stifn_qp37", precision="fp32").get_frame(3)
    assert frame_bytes(default) == frame_bytes(named)
    assert frame_bytes(default) != frame_bytes(clip.get_frame(3))


def test_every_qp_of_the_contract_has_a_shipped_default():
    # issue 11's contracts: QP 37, 32, 27 and 22 pick their own model; QPs between pick the nearest
    expected = {20: 22, 22: 22, 24: 22, 25: 27, 27: 27, 29: 27, 30: 32, 32: 32, 34: 32, 35: 37, 37: 37, 39: 37}
    assert {qp: default_model(qp, "lite") for qp in expected} == {qp: f"stifn_qp{q}" for qp, q in expected.items()}
    for qp in (19, 40):
        with pytest.raises(vs.Error, match=rf"within 2 of qp={qp} \(trained QPs: 22, 27, 32, 37;"):
            vsrestore.stifn(noise_yuv(), qp=qp)


@pytest.mark.parametrize(
    "clip, kwargs, match",
    [
        (lambda: core.std.BlankClip(format=vs.RGB24, width=32, height=32), {}, "convert to YUV"),
        (lambda: core.std.BlankClip(format=vs.YUV444PS, width=32, height=32), {}, "integer samples"),
        (lambda: noise_yuv(), {"qp": 52}, "qp must be one of 0..51"),
        (lambda: noise_yuv(), {"qp": -1}, "qp must be one of 0..51"),
        (lambda: noise_yuv(), {"size": "big"}, "size must be one of lite, r3, r3l"),
        (lambda: noise_yuv(), {"planes": [3]}, "planes must be"),
        (lambda: noise_yuv(), {"planes": [0, 0]}, "planes must be"),
        (lambda: core.std.BlankClip(format=vs.YUV420P8, width=8, height=32), {}, "at least 16x16"),
    ],
)
def test_bad_input(clip, kwargs, match):
    with pytest.raises(vs.Error, match=match):
        vsrestore.stifn(clip(), **{"model": STIFN(), **kwargs})
