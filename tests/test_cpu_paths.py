"""CPU inference paths: precision "auto", bf16 where the CPU has it, threads per stream,
channels_last, STIFN's oneDNN Conv3d, and the OpenVINO back-end."""
from __future__ import annotations

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

import vsrestore
from standins import assert_same_bytes_in_any_order, frame_bytes
from vsrestore.filters.common import Runner
from vsrestore.models import device as device_mod
from vsrestore.models.device import auto_precision, cpu_has_bf16, fp32_methods, resolve_precision, stream_threads
from vsrestore.networks import stifn as stifn_mod
from vsrestore.networks.msitf import MSITF, PRESETS as MSITF_PRESETS
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.networks.stifn import PRESETS as STIFN_PRESETS, STIFN

core = vs.core
CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)
pytestmark = pytest.mark.usefixtures("single_thread")


def tiny(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = {
        "mstfn": lambda: MSTFN(MSTFNConfig(features=4, num_rpb=0, num_tail=0)),
        "stifn": lambda: STIFN(STIFN_PRESETS["tiny"]),
        "msitf": lambda: MSITF(MSITF_PRESETS["tiny"]),
    }[arch]().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return net


def noise(fmt: int = vs.YUV420P8, length: int = 5, width: int = 48, height: int = 32) -> vs.VideoNode:
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length)

    def fill(n, f):
        out = f.copy()
        rng = np.random.default_rng(n)
        for p in range(out.format.num_planes):
            view = np.asarray(out[p])
            view[...] = rng.integers(0, 256, view.shape)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def as_float(frame: vs.VideoFrame) -> np.ndarray:
    return np.concatenate([np.asarray(frame[p]).astype(np.float64).ravel() for p in range(frame.format.num_planes)])


# --------------------------------------------------------------------------------------------------
# precision "auto" and bf16 on the CPU


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_on_the_cpu(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: native)
    half = "bf16" if native else "fp32"
    assert [auto_precision(a, CPU) for a in ("mstfn", "stifn", "msitf", "")] == [half, half, half, "fp32"]
    assert resolve_precision("auto", CPU, "stifn") is (torch.bfloat16 if native else torch.float32)
    assert resolve_precision("auto", CPU, "mstfn") is (torch.bfloat16 if native else torch.float32)


def test_auto_keeps_mstfn_stage1_in_fp32() -> None:
    assert fp32_methods("mstfn", "auto") == {"stage1"}
    assert fp32_methods("mstfn", "bf16") == fp32_methods("stifn", "auto") == fp32_methods("", "auto") == frozenset()


@pytest.mark.skipif(not cpu_has_bf16(), reason="the CPU does not compute bf16")
def test_auto_runs_mstfn_stage1_in_fp32_and_the_fusion_in_bf16() -> None:
    torch.manual_seed(0)
    net = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)).eval()
    f = torch.rand(1, 3, 24, 32)
    runs = {p: Runner("mstfn", net, "cpu", p) for p in ("fp32", "auto", "bf16")}
    g = {p: r("stage1", f, f, f) for p, r in runs.items()}
    assert torch.equal(g["auto"], g["fp32"]) and not torch.equal(g["bf16"], g["fp32"])
    y = {p: r("fuse", g["fp32"], g["fp32"], g["fp32"], f) for p, r in runs.items()}
    assert torch.equal(y["auto"], y["bf16"]) and not torch.equal(y["auto"], y["fp32"])


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_on_cuda(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(device_mod, "_cuda_bf16", lambda device: native)
    half = "bf16" if native else "fp16"
    mstfn = "bf16" if native else "fp32"  # fp16 was never measured for MSTFN
    assert [auto_precision(a, CUDA) for a in ("mstfn", "stifn", "msitf")] == [mstfn, half, half]


@pytest.mark.skipif(cpu_has_bf16(), reason="this CPU computes bf16")
@pytest.mark.parametrize("name, clip", [("mstfn", lambda: noise(vs.RGB24)), ("stifn", noise),
                                        ("msitf", lambda: noise(vs.RGB24))])
def test_bf16_on_a_cpu_without_it_is_a_clear_error(name, clip) -> None:
    with pytest.raises(vs.Error, match=rf"vsrestore\.{name}: precision='bf16' needs CUDA or a CPU that computes "
                                       r"bfloat16 natively \(AMX-BF16 or AVX512-BF16\)"):
        getattr(vsrestore, name)(clip(), model=tiny(name), device="cpu", precision="bf16")


def test_bf16_runs_where_the_cpu_has_it(monkeypatch) -> None:
    # Pretend the CPU computes bf16 (this one emulates it: slow, but right, on a tiny network).
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: True)
    net, clip = tiny("stifn"), noise()
    auto = Runner("stifn", net, "cpu", "auto")
    # autocast: the weights stay float32, convolutions run in bf16
    assert auto.dtype is torch.bfloat16 and next(auto.net.parameters()).dtype is torch.float32
    assert Runner("mstfn", tiny("mstfn"), "cpu", "auto").dtype is torch.bfloat16
    fp32 = as_float(vsrestore.stifn(clip, model=net, precision="fp32").get_frame(2))
    bf16 = as_float(vsrestore.stifn(clip, model=net, precision="bf16").get_frame(2))
    assert 0 < np.abs(fp32 - bf16).max() <= 4  # 8-bit codes: bf16 rounding, not garbage


def test_default_precision_is_auto() -> None:
    import inspect

    for name in ("mstfn", "stifn", "msitf"):
        params = inspect.signature(getattr(vsrestore, name)).parameters
        assert params["precision"].default == "auto" and params["backend"].default == "torch"


# --------------------------------------------------------------------------------------------------
# threads per stream


def test_stream_threads_share_the_cores() -> None:
    assert [stream_threads(s, 2) for s in (1, 2, 3)] == [2, 1, 1]
    assert [stream_threads(s, 8) for s in (1, 2, 3, 8)] == [8, 4, 2, 1]


class ThreadProbe(torch.nn.Module):
    """Stand-in that records the torch threads it runs with."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.get_num_threads())
        return x[:, 3:4]


def test_each_stream_runs_on_its_share_of_the_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        probe = ThreadProbe()
        runners = {s: Runner("stifn", probe, "cpu", "fp32", num_streams=s) for s in (1, 2, 4)}
    finally:
        torch.set_num_threads(before)
    for streams, runner in runners.items():
        worker = threading.Thread(target=runner, args=("forward", torch.zeros(1, 7, 4, 4)))
        worker.start()
        worker.join()
        assert probe.seen[-1] == 4 // streams


# --------------------------------------------------------------------------------------------------
# channels_last and STIFN's oneDNN Conv3d


def test_stifn_and_mstfn_run_channels_last_and_msitf_does_not() -> None:
    for arch, expected in (("stifn", True), ("mstfn", True), ("msitf", False)):
        net = tiny(arch)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        runner = Runner(arch, net, "cpu", "fp32")
        assert runner.channels_last is expected
        assert runner.net is net  # already in place: shared, its values untouched
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
        conv = {"stifn": lambda n: n.qe_in.weight, "mstfn": lambda n: n.stage1.conv1.conv[0].weight,
                "msitf": lambda n: n.conv_first.weight}[arch](net)
        assert conv.is_contiguous(memory_format=torch.channels_last) is expected
    stifn = tiny("stifn").double()  # a copy is made (fp32), and laid out channels_last_3d
    runner = Runner("stifn", stifn, "cpu", "fp32")
    assert runner.net is not stifn and runner.net.stem.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert Runner("stifn", ThreadProbe(), "cpu", "fp32").channels_last is False  # stand-ins run as they are


def test_channels_last_stifn_equals_nchw() -> None:
    net = tiny("stifn")
    x = torch.rand(1, 7, 24, 40)
    with torch.no_grad():
        want = net(x)
    got = Runner("stifn", net, "cpu", "fp32")("forward", x)
    assert torch.allclose(got, want, atol=1e-5)


def test_onednn_conv3d_equals_conv3d_and_is_not_used_when_tracing_or_training() -> None:
    x, w, b = torch.rand(1, 4, 7, 12, 10), torch.randn(5, 4, 3, 3, 3), torch.randn(5)
    with torch.no_grad():
        assert stifn_mod._onednn(x, w)
        assert torch.allclose(stifn_mod.conv3d(x, w, b, 1), F.conv3d(x, w, b, padding=1), atol=1e-5)
    w.requires_grad_(True)
    assert not stifn_mod._onednn(x, w)  # training keeps autograd's conv3d
    traced = []

    class Probe(torch.nn.Module):
        def forward(self, t):
            traced.append(stifn_mod._onednn(t, t))
            return t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation
        torch.jit.trace(Probe(), (x,), check_trace=False)
    assert traced == [False]  # what OpenVINO's converter and the ONNX exporter see


def test_stifn_streams_give_identical_bytes_in_any_order() -> None:
    net, clip = tiny("stifn"), noise(length=7)
    reference = [frame_bytes(f) for f in vsrestore.stifn(clip, model=net).frames()]
    assert_same_bytes_in_any_order(vsrestore.stifn(clip, model=net, num_streams=2), reference, seed=11)


# --------------------------------------------------------------------------------------------------
# the same bytes on any number of threads (a render worker on one thread must reproduce vspipe on two)


@pytest.mark.parametrize("conv, shape", [(F.conv2d, (1, 40, 48, 64)), (F.conv3d, (1, 8, 3, 48, 64))])
def test_pointwise_convolutions_round_the_same_on_one_and_two_threads(conv, shape) -> None:
    torch.manual_seed(0)
    x, w = torch.randn(shape) * 10, torch.randn(8, shape[1], *(1,) * (len(shape) - 2))
    dilated = conv(x, w, None, 1, 0, 2)
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with device_mod.ThreadCountInvariantConvs():
            runs.append((conv(x, w), conv(x, w, dilation=1), conv(x, w, None, 1, 0, 1)))
    torch.set_num_threads(1)
    for out in (*runs[0], *runs[1]):
        assert torch.equal(out, dilated)  # one kernel at both thread counts: oneDNN's
    assert torch.allclose(dilated, conv(x, w), rtol=1e-5, atol=1e-4)  # and the same convolution


def test_other_convolutions_are_left_as_they_are() -> None:
    seen = []

    class Spy(device_mod.ThreadCountInvariantConvs):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.conv2d:
                seen.append(device_mod._dilate_pointwise(2, args, kwargs or {}))
            return super().__torch_function__(func, types, args, kwargs)

    x = torch.rand(1, 4, 8, 8)
    with Spy():
        F.conv2d(x, torch.rand(4, 4, 3, 3), None, 1, 1)  # 3x3: oneDNN at any thread count already
        F.conv2d(x, torch.rand(4, 4, 1, 1), dilation=(1, 3))  # dilated already
        F.conv2d(x, torch.rand(4, 4, 1, 1), None, 1, 0, 1, 1)  # pointwise
    assert [a[5] if len(a) > 5 else k.get("dilation") for a, k in seen] == [None, (1, 3), (2, 2)]


# A 6-bit MSTFN with visible residuals (weights x3: bf16 rounding reaches the output), STIFN and the
# MSITF trunk at precision "auto", and MSITF in fp32 (RGBS: any rounding shows in the bytes).
_THREADS_SCRIPT = """
import hashlib, sys
from fractions import Fraction
import vsrestore
import torch
import vapoursynth as vs
from vsrestore.evaluation.vsclips import scene_cut_clip
from vsrestore.networks.msitf import MSITF, MSITFConfig
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.networks.stifn import STIFN, PRESETS

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(1)
mstfn = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)).eval()
with torch.no_grad():
    for p in mstfn.parameters():
        p.mul_(3.0)
stifn = STIFN(PRESETS["tiny"]).eval()
msitf = MSITF(MSITFConfig(features=8, deform_groups=2, front_blocks=1, temporal_heads=2, trunk_layers=1,
                          trunk_blocks=2, trunk_heads=2, cpb_hidden=16)).eval()
src = scene_cut_clip(5, [], 64, 48, Fraction(25))
rgb = vs.core.resize.Bicubic(src, width=32, height=32, format=vs.RGBS, matrix_in=1)
nodes = [vsrestore.mstfn(src, in_bits=6, model=mstfn), vsrestore.stifn(src, model=stifn),
         vsrestore.msitf(rgb, model=msitf), vsrestore.msitf(rgb, model=msitf, precision="fp32")]
for node in nodes:
    digest = hashlib.sha256()
    for f in node.frames():
        for p in range(f.format.num_planes):
            digest.update(bytes(f[p]))
    print(digest.hexdigest())
"""


def test_filters_give_the_same_bytes_on_one_and_two_torch_threads(tmp_path) -> None:
    script = tmp_path / "threads.py"
    script.write_text(_THREADS_SCRIPT)
    digests = [
        subprocess.run([sys.executable, str(script), str(n)], capture_output=True, text=True, check=True,
                       timeout=300).stdout.split()
        for n in (1, 2)
    ]
    assert len(digests[0]) == 4 and digests[0] == digests[1]


# --------------------------------------------------------------------------------------------------
# backend


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(vs.Error, match=r"vsrestore\.stifn: backend must be one of 'torch', 'openvino'; got 'onnx'"):
        vsrestore.stifn(noise(), model=tiny("stifn"), backend="onnx")


def test_openvino_missing_is_a_clear_error(monkeypatch) -> None:
    from vsrestore.backends import openvino as ov_backend

    def missing():
        raise ov_backend.BackendError("the openvino package is not installed: pip install openvino "
                                      "(or vsrestore[openvino]), or use backend='torch'")

    monkeypatch.setattr(ov_backend, "_openvino", missing)
    with pytest.raises(vs.Error, match=r"vsrestore\.stifn: backend='openvino': the openvino package is not "
                                       r"installed: pip install openvino"):
        vsrestore.stifn(noise(), model=tiny("stifn"), backend="openvino")


def test_openvino_refuses_stand_ins_and_msitf_falls_back_to_torch() -> None:
    pytest.importorskip("openvino")
    with pytest.raises(vs.Error, match=r"backend='openvino': only registered MSTFN and STIFN networks convert"):
        vsrestore.stifn(noise(), model=ThreadProbe(), backend="openvino")
    with pytest.warns(UserWarning, match=r"MSITF stays on backend='torch': its deformable convolutions"):
        node = vsrestore.msitf(noise(vs.RGB24, width=16, height=16), model=tiny("msitf"), backend="openvino")
    assert node.width == 64


@pytest.mark.parametrize("name, fmt, kwargs", [
    ("stifn", vs.YUV420P8, {}),
    ("mstfn", vs.RGB24, {"out_depth": 32, "precision": "fp32"}),  # float output: compared exactly
])
def test_openvino_equals_torch_and_caches_on_disk(tmp_path, monkeypatch, name, fmt, kwargs) -> None:
    ov = pytest.importorskip("openvino")
    monkeypatch.setenv("VSRESTORE_OPENVINO_CACHE", str(tmp_path))
    net, clip = tiny(name), noise(fmt, length=6)
    want = [as_float(f) for f in getattr(vsrestore, name)(clip, model=net, **kwargs).frames()]
    node = getattr(vsrestore, name)(clip, model=net, backend="openvino", num_streams=2, **kwargs)
    got = [as_float(f) for f in node.frames()]
    tolerance = 1e-5 if fmt == vs.RGB24 else 1.0  # float output; or one 8-bit code of rounding
    assert max(np.abs(a - b).max() for a, b in zip(want, got)) <= tolerance
    assert_same_bytes_in_any_order(node, [frame_bytes(f) for f in node.frames()], seed=2)
    assert len(list(tmp_path.glob(f"{name}-*.xml"))) == (2 if name == "mstfn" else 1)  # stage1 and fuse
    # A later node (or run) reads the converted graphs instead of converting again.
    monkeypatch.setattr(ov, "convert_model", lambda *a, **k: pytest.fail("converted again"))
    from vsrestore.backends import openvino as ov_backend

    ov_backend._compiled.clear()
    again = getattr(vsrestore, name)(clip, model=net, backend="openvino", **kwargs)
    assert frame_bytes(again.get_frame(3)) == frame_bytes(node.get_frame(3))


@pytest.mark.skipif(not cpu_has_bf16(), reason="the CPU does not compute bf16")
def test_openvino_auto_compiles_mstfn_stage1_with_the_f32_hint(tmp_path, monkeypatch) -> None:
    pytest.importorskip("openvino")
    from vsrestore.backends import openvino as ov_backend

    monkeypatch.setenv("VSRESTORE_OPENVINO_CACHE", str(tmp_path))
    ov_backend._compiled.clear()
    runner = Runner("mstfn", tiny("mstfn"), "cpu", "auto", backend="openvino")
    f = torch.rand(1, 3, 16, 16)
    g = runner("stage1", f, f, f)
    runner("fuse", g, g, g, f)
    hints = {method: str(compiled.get_property("INFERENCE_PRECISION_HINT"))
             for (_, method, *_), compiled in ov_backend._compiled.items()}
    assert hints == {"stage1": "<Type: 'float32'>", "fuse": "<Type: 'bfloat16'>"}
