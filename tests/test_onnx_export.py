"""ONNX export in vs-mlrt's layout: exported graph = torch, and vs-mlrt's ORT plugin = vsrestore."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsrestore
from vsrestore.backends.onnx_export import ExportError, MSTFNForMLRT, export_onnx
from vsrestore.cli import main
from vsrestore.models import get_arch

from conftest import REPO

core = vs.core
pytestmark = pytest.mark.usefixtures("single_thread")


def random_net(arch: str, seed: int = 0) -> torch.nn.Module:
    """A tiny network with weights large enough that the output differs from the identity."""
    torch.manual_seed(seed)
    net = get_arch(arch).build("tiny").eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return net


@pytest.mark.parametrize("arch, channels", [("mstfn", 15), ("stifn", 7)])
def test_exported_graph_equals_torch_in_onnxruntime(tmp_path: Path, arch: str, channels: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = random_net(arch)
    done = export_onnx(net, tmp_path / f"{arch}.onnx")
    assert (done.arch, done.input_channels) == (arch, channels)
    session = ort.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    for height, width in ((40, 56), (23, 31)):  # dynamic height and width, not the traced 64x64
        x = torch.rand(1, channels, height, width)
        with torch.no_grad():
            want = (MSTFNForMLRT(net) if arch == "mstfn" else net)(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4


def test_mstfn_wrapper_reads_rgb_frames_and_returns_rgb() -> None:
    net = random_net("mstfn")
    x = torch.rand(1, 15, 8, 8)
    bgr = torch.cat([x[:, 3 * k : 3 * k + 3].flip(1) for k in range(5)], 1)
    with torch.no_grad():
        assert torch.equal(MSTFNForMLRT(net)(x), net(bgr).flip(1))


def test_msitf_is_refused_with_the_reason(tmp_path: Path) -> None:
    net = get_arch("msitf").build("tiny")
    with pytest.raises(ExportError, match="MSITF is not exported: it makes 7 frames"):
        export_onnx(net, tmp_path / "msitf.onnx")
    assert not (tmp_path / "msitf.onnx").exists()


def test_cli_exports_the_shipped_model(tmp_path: Path, capsys) -> None:
    onnx = pytest.importorskip("onnx")
    assert main(["export-onnx", "mstfn_6bit", "--out", str(tmp_path / "m.onnx")]) == 0
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["vsrestore_arch"] == "mstfn" and "6 bits" in meta["vsrestore_layout"]
    assert "exported" in capsys.readouterr().err
    assert main(["export-onnx", "mstfn_6bit", "mstfn_6bit", "--out", str(tmp_path / "two.onnx")]) == 1


def noise_rgb24(length: int, width: int = 48, height: int = 32) -> vs.VideoNode:
    blank = core.std.BlankClip(format=vs.RGB24, width=width, height=height, length=length)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(n)
        for p in range(3):
            np.asarray(out[p])[...] = rng.integers(0, 256, (height, width), dtype=np.uint8)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


@pytest.mark.skipif(not hasattr(core, "ort"), reason="vs-mlrt's ORT plugin is not installed (vapoursynth-mlrt-ort)")
def test_vs_mlrt_snippet_renders_what_vsrestore_renders(tmp_path: Path) -> None:
    net = random_net("mstfn", seed=3)
    path = export_onnx(net, tmp_path / "mstfn.onnx").path
    clip = noise_rgb24(6)
    want = vsrestore.mstfn(clip, model=net, in_bits=6, out_depth=16, precision="fp32")  # as the ONNX model runs
    vs.clear_outputs()
    try:
        runpy.run_path(str(REPO / "examples" / "mstfn_mlrt_ort.vpy"),
                       init_globals={"src": clip, "network": str(path), "in_bits": "6"})
        got = vs.get_output(0).clip
    finally:
        vs.clear_outputs()
    assert (got.format.id, got.num_frames) == (vs.RGB48, 6)
    for n in range(6):  # the edges repeat frames like vsrestore's windows
        a, b = want.get_frame(n), got.get_frame(n)
        diff = max(int(np.abs(np.asarray(a[p]).astype(int) - np.asarray(b[p]).astype(int)).max()) for p in range(3))
        assert diff <= 1, f"frame {n}: {diff} codes apart"  # float rounding: one 16-bit code at most
