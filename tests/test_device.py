"""Device and precision selection, and the geometry of the host<->CUDA plane copies."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsrestore.bridge import cuda_transfer
from vsrestore.bridge.cuda_transfer import host_copy_2d, plane_geometry
from vsrestore.models.device import cpu_has_bf16, resolve_device, resolve_precision
from vsrestore.bridge.frames import frames_to_tensor, sample_scale, tensor_to_frame

core = vs.core
HAS_CUDA = torch.cuda.is_available()


# --------------------------------------------------------------------------------------------------
# resolve_device


@pytest.mark.skipif(HAS_CUDA, reason="auto picks CUDA on this machine")
def test_auto_is_cpu_without_cuda() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_auto_is_cuda_with_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu(value) -> None:
    device = resolve_device(value)
    assert isinstance(device, torch.device)
    assert device == torch.device("cpu")


@pytest.mark.parametrize(
    "value",
    ["", "gpu", "mps", "cpu0", "cuda0", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1", "cuda:1.5", "auto:0",
     0, None, 1.0, torch.device("meta")],
)
def test_bad_devices_are_refused(value) -> None:
    with pytest.raises(ValueError, match=r"^device must be"):
        resolve_device(value)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "CUDA:1", torch.device("cuda"), torch.device("cuda", 0)])
def test_cuda_without_cuda_says_so(value) -> None:
    with pytest.raises(ValueError, match="no CUDA device") as info:
        resolve_device(value)
    assert "device=" in str(info.value)


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_indices_with_cuda() -> None:
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_indexed_cpu_device_is_accepted() -> None:
    assert resolve_device(torch.device("cpu", 0)).type == "cpu"


# --------------------------------------------------------------------------------------------------
# resolve_precision


def test_fp32_on_cpu() -> None:
    assert resolve_precision("fp32", torch.device("cpu")) is torch.float32


@pytest.mark.parametrize("precision", [
    "fp16", pytest.param("bf16", marks=pytest.mark.skipif(cpu_has_bf16(), reason="this CPU computes bf16")),
])
def test_half_precisions_refused_on_cpu(precision: str) -> None:
    with pytest.raises(ValueError, match=rf"precision='{precision}'.*CUDA"):
        resolve_precision(precision, torch.device("cpu"))


@pytest.mark.parametrize("precision", ["fp8", "FP32", "float32", "", "half", "fp 16"])
def test_bad_precisions_refused(precision: str) -> None:
    with pytest.raises(ValueError, match=r"^precision must be one of \['bf16', 'fp16', 'fp32'\]"):
        resolve_precision(precision, torch.device("cpu"))


def test_precisions_on_a_cuda_device_object() -> None:
    # a torch.device("cuda") can be built without a GPU; no CUDA call is made
    cuda = torch.device("cuda", 0)
    assert resolve_precision("fp16", cuda) is torch.float16
    assert resolve_precision("bf16", cuda) is torch.bfloat16
    assert resolve_precision("fp32", cuda) is torch.float32
    with pytest.raises(ValueError):
        resolve_precision("fp64", cuda)


# --------------------------------------------------------------------------------------------------
# cuda_transfer geometry, checked with the host twin of cudaMemcpy2D


def pattern_clip(fmt: int, width: int, height: int, length: int = 1) -> vs.VideoNode:
    """Frames filled with per-frame, per-plane random samples (deterministic)."""
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length)

    def write(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(out.format.num_planes):
            view = np.asarray(out[p])
            rng = np.random.default_rng(1000 * n + p)
            if view.dtype.kind == "f":
                view[...] = rng.standard_normal(view.shape).astype(view.dtype)
            else:
                peak = (1 << out.format.bits_per_sample) - 1
                view[...] = rng.integers(0, peak, view.shape, endpoint=True).astype(view.dtype)
        return out

    return core.std.ModifyFrame(blank, blank, write)


GEOMETRY_CASES = [
    # format, width, height, expected (width, height) of each plane
    (vs.YUV420P8, 50, 10, [(50, 10), (25, 5), (25, 5)]),
    (vs.YUV420P10, 34, 6, [(34, 6), (17, 3), (17, 3)]),
    (vs.RGBS, 50, 7, [(50, 7)] * 3),
    (vs.YUV422P16, 34, 5, [(34, 5), (17, 5), (17, 5)]),
]


@pytest.mark.parametrize("fmt, width, height, sizes", GEOMETRY_CASES)
def test_plane_geometry_read(fmt: int, width: int, height: int, sizes) -> None:
    frame = pattern_clip(fmt, width, height).get_frame(0)
    for p, (pw, ph) in enumerate(sizes):
        expected = np.asarray(frame[p])
        g = plane_geometry(frame, p)
        assert (g.height, g.row_bytes, g.dtype) == (ph, pw * expected.itemsize, expected.dtype)
        assert g.pitch > g.row_bytes, "rows must be padded for this test to mean anything"
        assert g.pitch == expected.strides[0]
        assert g.pointer == expected.__array_interface__["data"][0]

        dense = np.empty((g.height, g.row_bytes // g.dtype.itemsize), dtype=g.dtype)
        dense.fill(0x5A if g.dtype.kind != "f" else np.nan)
        host_copy_2d(dense.ctypes.data, g.row_bytes, g.pointer, g.pitch, g.row_bytes, g.height)
        np.testing.assert_array_equal(dense, expected)


@pytest.mark.parametrize("fmt, width, height, sizes", GEOMETRY_CASES)
def test_plane_geometry_write(fmt: int, width: int, height: int, sizes) -> None:
    source = pattern_clip(fmt, width, height).get_frame(0)
    before = [np.array(source[p], copy=True) for p in range(source.format.num_planes)]
    frame = source.copy()
    rng = np.random.default_rng(99)
    for p, (pw, ph) in enumerate(sizes):
        g = plane_geometry(frame, p, write=True)
        assert (g.height, g.row_bytes // g.dtype.itemsize) == (ph, pw)
        assert g.pitch > g.row_bytes
        # sentinel in the row padding between rows: the copy must not touch it
        pad = g.pitch - g.row_bytes
        for row in range(g.height - 1):
            ctypes.memset(g.pointer + row * g.pitch + g.row_bytes, 0xC3, pad)

        if g.dtype.kind == "f":
            dense = rng.standard_normal((ph, pw)).astype(g.dtype)
        else:
            peak = (1 << frame.format.bits_per_sample) - 1
            dense = rng.integers(0, peak, (ph, pw), endpoint=True).astype(g.dtype)
        host_copy_2d(g.pointer, g.pitch, dense.ctypes.data, g.row_bytes, g.row_bytes, g.height)
        np.testing.assert_array_equal(np.asarray(frame[p]), dense)

        raw = np.ctypeslib.as_array((ctypes.c_uint8 * (g.pitch * g.height)).from_address(g.pointer))
        padding = raw.reshape(g.height, g.pitch)[:-1, g.row_bytes :]
        assert (padding == 0xC3).all()
    # the source frame the copy came from is untouched
    for p, plane in enumerate(before):
        np.testing.assert_array_equal(np.asarray(source[p]), plane)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cupy_path_unavailable_without_cuda() -> None:
    # without CuPy (or without a device CuPy can see) the frames module must take the host path
    assert cuda_transfer.available() is False


# --------------------------------------------------------------------------------------------------
# on a GPU: the CUDA paths agree with the CPU path exactly


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
class TestCudaRoundTrip:
    CASES = [(vs.YUV444P8, 50, 10), (vs.YUV444P10, 34, 6), (vs.YUV444P16, 50, 8), (vs.RGBS, 50, 7), (vs.RGBH, 34, 6)]
    CUDA = torch.device("cuda", 0)

    @staticmethod
    def pattern_frames(fmt: int, width: int, height: int, length: int) -> tuple[list[vs.VideoFrame], float]:
        """The frames of :func:`pattern_clip` and their sample scale."""
        clip = pattern_clip(fmt, width, height, length=length)
        frames = [clip.get_frame(n) for n in range(length)]
        return frames, sample_scale(frames[0].format)

    @pytest.mark.parametrize("fmt, width, height", CASES)
    def test_read_matches_cpu(self, fmt: int, width: int, height: int) -> None:
        frames, scale = self.pattern_frames(fmt, width, height, length=3)
        for planes in (None, (2, 0)):
            on_cpu = frames_to_tensor(frames, planes=planes, scale=scale)
            on_gpu = frames_to_tensor(frames, planes=planes, scale=scale, device=self.CUDA)
            assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
            assert torch.equal(on_gpu.cpu(), on_cpu)

    @pytest.mark.parametrize("fmt, width, height", CASES)
    def test_write_matches_cpu(self, fmt: int, width: int, height: int) -> None:
        frames, scale = self.pattern_frames(fmt, width, height, length=2)
        tensor = frames_to_tensor(frames, scale=scale, device=self.CUDA)
        for n, frame in enumerate(frames):
            via_gpu, via_cpu = frame.copy(), frame.copy()
            for p in range(3):
                np.asarray(via_gpu[p])[...] = 0
                np.asarray(via_cpu[p])[...] = 0
            tensor_to_frame(tensor[n], via_gpu)
            tensor_to_frame(tensor[n].cpu(), via_cpu)
            for p in range(3):
                np.testing.assert_array_equal(np.asarray(via_gpu[p]), np.asarray(via_cpu[p]))
                np.testing.assert_array_equal(np.asarray(via_gpu[p]), np.asarray(frame[p]))
            # a subset of planes, in another order
            partial = frame.copy()
            np.asarray(partial[0])[...] = 0
            tensor_to_frame(tensor[n, [2, 0]], partial, planes=(2, 0))
            np.testing.assert_array_equal(np.asarray(partial[0]), np.asarray(frame[0]))
