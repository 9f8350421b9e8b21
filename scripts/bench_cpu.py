"""CPU speed of the three filters: every path measured in one run, the paths interleaved frame by frame.

Sections (``--section``, default all):

- ``speed``: each network through its public filter, output 640x360 (MSITF: input 160x90, 4x),
  ratios to fp32 torch as it ran before channels_last, oneDNN Conv3d and threads per stream
  (= 1.0): the default path (precision "auto", backend "torch": bf16 where the CPU computes it);
  fp32 torch as it runs now; ``backend="openvino"`` at "auto" and at fp32; and the network
  exported by ``vsrestore export-onnx`` run per frame as vs-mlrt runs it (whole network per frame
  on shifted clips), in OpenVINO (its Python API in a ModifyFrame, 1 stream, f32 and, where the CPU
  computes it, bf16) and in ONNX Runtime (vs-mlrt's ``core.ort`` plugin). Each path's largest
  difference from the fp32 output is printed beside it.
  Beside each path: its achieved GFLOP/s, and that as a fraction of a plain 3x3 convolution of the
  network's main width on the same pixels at the path's precision (fp32, or bf16 tensors; the
  faster of NCHW and channels_last; repeated to the network's work per frame), timed in the same
  interleaved loop.
- ``scaling``: seconds per frame and peak RSS against output size (320x180, 640x360, 1280x720),
  untiled and tiled, each case in a process of its own (peak RSS is per process).

Random weights except MSTFN's shipped ``mstfn_6bit``: speed does not depend on weights. Run it
niced on a busy machine; ratios from one run are what to compare, absolute times move with load.
Usage: ./dev python scripts/bench_cpu.py [--section speed|scaling] [--frames N] [--networks ...] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import vapoursynth as vs

import vsrestore
from vsrestore.filters import common
from vsrestore.models import get_arch, load
from vsrestore.models.device import auto_precision, cpu_has_bf16, fp32_methods
from vsrestore.networks import deform_conv, stifn as stifn_net

core = vs.core
SIZES = ((320, 180), (640, 360), (1280, 720))


# --------------------------------------------------------------------------------------------------
# the networks and their clips


def network(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "mstfn":
        return load("mstfn_6bit")
    net = get_arch(name).build("lite" if name == "stifn" else "small").eval()
    return net


def noise_clip(fmt: int, width: int, height: int, length: int) -> vs.VideoNode:
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length, fpsnum=24)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(n)
        for p in range(out.format.num_planes):
            view = np.asarray(out[p])
            base = np.linspace(0, 200, view.shape[1])[None, :] + 3 * n
            view[...] = np.clip(base + rng.integers(0, 40, view.shape), 0, 255)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def source(name: str, width: int, height: int, length: int) -> vs.VideoNode:
    """The clip a filter gets for an output of width x height."""
    if name == "msitf":
        return noise_clip(vs.RGB24, width // 4, height // 4, length)
    return noise_clip(vs.RGB24 if name == "mstfn" else vs.YUV420P8, width, height, length)


def node(name: str, net: torch.nn.Module, clip: vs.VideoNode, **kwargs) -> vs.VideoNode:
    if name == "mstfn":
        return vsrestore.mstfn(clip, model=net, in_bits=6, out_depth=16, **kwargs)
    return getattr(vsrestore, name)(clip, model=net, **kwargs)


@contextlib.contextmanager
def before_this_change():
    """fp32 torch as it ran before: NCHW, PyTorch's own Conv3d choice, and the deformable convolution
    as it was (``bench_deform_conv.before``; MSITF's are all 3x3, stride 1, padding 1, one group).
    Nodes must be built and rendered inside."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_deform_conv import before

    saved = common.CHANNELS_LAST_ARCHS, stifn_net._onednn, deform_conv.modulated_deform_conv2d
    common.CHANNELS_LAST_ARCHS = frozenset()
    stifn_net._onednn = lambda x, weight: False
    deform_conv.modulated_deform_conv2d = lambda x, offset, mask, weight, bias, **_: before(x, offset, mask, weight, bias)
    try:
        yield
    finally:
        common.CHANNELS_LAST_ARCHS, stifn_net._onednn, deform_conv.modulated_deform_conv2d = saved


# --------------------------------------------------------------------------------------------------
# the exported network run per frame as vs-mlrt runs it


def shifted(c: vs.VideoNode, k: int) -> vs.VideoNode:
    if k < 0:
        return c[0] * -k + c[:k]
    if k > 0:
        return c[k:] + c[-1] * k
    return c


def mlrt_inputs(name: str, clip: vs.VideoNode) -> tuple[list[vs.VideoNode], int]:
    """vs-mlrt's input clips (float, [0, 1], shifted) and the output's plane count."""
    if name == "mstfn":
        x = core.std.Lut(clip, planes=[0, 1, 2], function=lambda x: x >> 2 << 2)  # in_bits=6
        x = core.std.Expr(x, "x 256 * 65535 /", format=vs.RGBS)
        return [shifted(x, k) for k in range(-2, 3)], 3
    y = core.std.Expr(core.std.ShufflePlanes(clip, 0, vs.GRAY), "x 255 /", format=vs.GRAYS)
    return [shifted(y, k) for k in range(-3, 4)], 1


def mlrt_output(name: str, y: vs.VideoNode) -> vs.VideoNode:
    return core.std.Expr(y, "x 65535 *" if name == "mstfn" else "x 255 *",
                         format=vs.RGB48 if name == "mstfn" else vs.GRAY8)


def openvino_per_frame(clips: list[vs.VideoNode], planes_out: int, onnx: Path, hint: str = "f32") -> vs.VideoNode:
    """The ONNX file compiled by OpenVINO (1 stream, as vs-mlrt's OV_CPU defaults; ``hint`` "f32",
    or "bf16", what OV_CPU computes on a CPU with AMX) and run on the stacked frames of ``clips``,
    one whole-network inference per frame."""
    import openvino as ov

    ov_core = ov.Core()
    compiled = ov_core.compile_model(str(onnx), "CPU", {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": "1",
                                                       "PERFORMANCE_HINT": "LATENCY",
                                                       "INFERENCE_NUM_THREADS": str(torch.get_num_threads())})
    local = threading.local()
    template = core.std.BlankClip(clips[0], format=vs.RGBS if planes_out == 3 else vs.GRAYS, keep=True)

    def run(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        request = getattr(local, "request", None) or compiled.create_infer_request()
        local.request = request
        x = np.concatenate([np.stack([np.asarray(fr[p]) for p in range(fr.format.num_planes)]) for fr in f[1:]])
        y = request.infer([x[None]])[compiled.output(0)][0]
        out = f[0].copy()
        for p in range(planes_out):
            np.asarray(out[p])[...] = y[p]
        return out

    return core.std.ModifyFrame(template, [template, *clips], run)


# --------------------------------------------------------------------------------------------------
# speed


def frames_per_call(name: str) -> int:
    return 6 if name == "msitf" else 1  # MSITF: one window (stride 3) serves 6 new output frames


def render(node_: vs.VideoNode, n: int) -> bytes:
    f = node_.get_frame(n)
    return b"".join(np.asarray(f[p]).tobytes() for p in range(f.format.num_planes))


def planes_of(node_: vs.VideoNode, n: int) -> np.ndarray:
    f = node_.get_frame(n)
    return np.concatenate([np.asarray(f[p]).astype(np.float64).ravel() for p in range(f.format.num_planes)])


def speed(name: str, frames: int, size: tuple[int, int], tmp: Path, flops_out: dict) -> None:
    width, height = size
    net = network(name)
    step = frames_per_call(name)
    length = 8 + step * (frames + 2) + 8
    clip = source(name, width, height, length)
    paths: dict[str, tuple[vs.VideoNode, contextlib.AbstractContextManager | None]] = {}
    with before_this_change():
        paths["fp32, before (1.0)"] = (node(name, net, clip, precision="fp32"), before_this_change)
    paths["default (auto, torch)"] = (node(name, net, clip), None)
    paths["fp32 torch"] = (node(name, net, clip, precision="fp32"), None)
    if name == "mstfn" and cpu_has_bf16():  # "auto" keeps Stage I in fp32; this is all of it in bf16
        paths["bf16 torch"] = (node(name, net, clip, precision="bf16"), None)
    try:
        import openvino  # noqa: F401
        if name != "msitf":
            paths["backend=openvino"] = (node(name, net, clip, backend="openvino"), None)
            paths["backend=openvino, fp32"] = (node(name, net, clip, backend="openvino", precision="fp32"), None)
    except ImportError:
        pass
    if name != "msitf":
        from vsrestore.backends.onnx_export import export_onnx

        onnx = export_onnx(net, tmp / f"{name}.onnx").path
        inputs, planes_out = mlrt_inputs(name, clip)
        try:
            import openvino  # noqa: F401
            paths["ONNX in OpenVINO, per frame"] = (mlrt_output(name, openvino_per_frame(inputs, planes_out, onnx)), None)
            if cpu_has_bf16():
                paths["ONNX in OpenVINO, per frame, bf16"] = (
                    mlrt_output(name, openvino_per_frame(inputs, planes_out, onnx, "bf16")), None)
        except ImportError:
            pass
        if hasattr(core, "ort"):
            ort = core.ort.Model(inputs, network_path=str(onnx), provider="CPU", num_streams=1)
            paths["ONNX in ONNX Runtime (core.ort), per frame"] = (mlrt_output(name, ort), None)

    split = flops_per_frame(name, net, width, height)
    per_frame = sum(split.values())
    # each path's precision per method: "auto" keeps some methods in fp32 (MSTFN's Stage I)
    auto = auto_precision(name, torch.device("cpu"))
    auto_split = {m: "fp32" if m in fp32_methods(name, "auto") else auto for m in split}
    precision_of = {label: dict.fromkeys(split, "fp32") for label in paths}
    precision_of.update({"default (auto, torch)": auto_split, "backend=openvino": auto_split,
                         "ONNX in OpenVINO, per frame, bf16": dict.fromkeys(split, "bf16"),
                         "bf16 torch": dict.fromkeys(split, "bf16")})
    convs = {p: plain_conv(name, net, width, height, p) for p in sorted({"fp32", auto})}
    # the conv repeated to the network's work per frame: a rate at the same scale, past call overheads
    reps = {p: max(1, round(per_frame / c["flop"])) for p, c in convs.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    conv_cpu: dict[str, list[float]] = {p: [] for p in convs}
    outputs: dict[str, np.ndarray] = {}
    first = 4 + step  # past the clip's start: windows and Stage-I caches in steady state
    for label, (nd, ctx) in paths.items():  # warm-up: compile, convert, fill caches
        with ctx() if ctx else contextlib.nullcontext():
            t0 = time.perf_counter()
            outputs[label] = planes_of(nd, first - step)
            print(f"  warm-up {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    for i in range(frames):
        n = first + i * step
        for label, (nd, ctx) in paths.items():
            with ctx() if ctx else contextlib.nullcontext():
                t0, c0 = time.perf_counter(), time.process_time()
                render(nd, n)
                times[label].append((time.perf_counter() - t0) / step)
                cpu[label].append((time.process_time() - c0) / step)
        for p, conv in convs.items():
            c0 = time.process_time()
            for _ in range(reps[p]):
                conv["run"]()
            conv_cpu[p].append((time.process_time() - c0) / reps[p])
    ref_label = "fp32, before (1.0)"
    base, base_cpu = statistics.median(times[ref_label]), statistics.median(cpu[ref_label])
    ref_out = outputs[ref_label]
    unit = "16-bit codes" if name == "mstfn" else "8-bit codes"
    print(f"\n{name} ({type(net).__name__}), output {width}x{height}, {frames} frames per path, interleaved")
    conv_rate = {p: c["flop"] / statistics.median(conv_cpu[p]) / 1e9 for p, c in convs.items()}
    print(f"| path | precision | CPU s/frame | ratio (CPU) | wall s/frame | ratio (wall) | max diff from fp32 ({unit}) "
          f"| GFLOP per CPU-second | fraction of a plain conv at its precision |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label in paths:
        med, med_cpu = statistics.median(times[label]), statistics.median(cpu[label])
        got = outputs[label]  # vs-mlrt's STIFN output is the luma plane alone: the first plane
        diff = float(np.abs(got - ref_out[: got.size]).max())
        rate = per_frame / med_cpu / 1e9
        # against the time plain convs at each method's precision would take for the same FLOPs
        roofline = sum(flop / (conv_rate[precision_of[label][m]] * 1e9) for m, flop in split.items())
        p = ", ".join(f"{m} {q}" for m, q in precision_of[label].items()) if len(split) > 1 else precision_of[label]["forward"]
        print(f"| {label} | {p} | {med_cpu:.3f} | {med_cpu / base_cpu:.2f} | {med:.3f} | {med / base:.2f} | {diff:.0f} "
              f"| {rate:.1f} | {roofline / med_cpu:.2f} |")
    for p, c in convs.items():
        print(f"plain 3x3 conv of the network's width ({c['what']}, {reps[p]} calls per frame): "
              f"{conv_rate[p]:.1f} GFLOP per CPU-second in the same run")
    print(f"the network: {per_frame / 1e9:.1f} GFLOP per output frame")
    flops_out[name] = {label: statistics.median(t) for label, t in times.items()}


# --------------------------------------------------------------------------------------------------
# FLOPs and the plain convolution to compare with


def flops_per_frame(name: str, net: torch.nn.Module, width: int, height: int) -> dict[str, float]:
    """FLOPs per output frame, by the method the filter calls (MSTFN: one ``stage1`` and one ``fuse``
    per frame, Stage I being reused; the others: ``forward``)."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(fn) -> float:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            fn()
        return counter.get_total_flops()

    if name == "mstfn":
        f = torch.rand(1, 3, height, width)
        with torch.no_grad():
            g = net.stage1(f, f, f)
        return {"stage1": count(lambda: net.stage1(f, f, f)), "fuse": count(lambda: net.fuse(g, g, g, f))}
    if name == "stifn":
        return {"forward": count(lambda: net(torch.rand(1, 7, height, width)))}
    return {"forward": count(lambda: net(torch.rand(1, 4, 3, height // 4, width // 4))) / 6}


def plain_conv(name: str, net: torch.nn.Module, width: int, height: int, precision: str) -> dict:
    """A 3x3 conv of the network's main width on its pixels at ``precision`` ("fp32", or "bf16":
    bf16 tensors, what autocast computes), in the faster of NCHW and channels_last."""
    ch = net.config.features_qe if name == "stifn" else net.config.features
    h, w = (height // 4, width // 4) if name == "msitf" else (height, width)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    x = torch.rand(1, ch, h, w).to(dtype)
    wt = torch.randn(ch, ch, 3, 3).to(dtype)
    layouts = {}
    for fmt in (torch.contiguous_format, torch.channels_last):
        xx, ww = x.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)
        with torch.no_grad():
            F.conv2d(xx, ww, padding=1)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                F.conv2d(xx, ww, padding=1)
                best = min(best, time.perf_counter() - t0)
            layouts[fmt] = (best, xx, ww)
    _, xx, ww = min(layouts.values(), key=lambda v: v[0])

    def run() -> None:
        with torch.no_grad():
            F.conv2d(xx, ww, padding=1)

    layout = "channels_last" if xx.is_contiguous(memory_format=torch.channels_last) else "NCHW"
    return {"run": run, "flop": 2 * ch * ch * 9 * h * w, "what": f"{precision}, {ch} ch, {w}x{h}, {layout}"}


# --------------------------------------------------------------------------------------------------
# scaling: one process per case


def scaling_case(name: str, width: int, height: int, tile: int | None, frames: int) -> dict:
    net = network(name)
    step = frames_per_call(name)
    clip = source(name, width, height, 8 + step * (frames + 2))
    kwargs = {"tile": tile} if tile else {}
    nd = node(name, net, clip, **kwargs)
    first = 4 + step
    render(nd, first - step)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(frames):
        render(nd, first + i * step)
    per = (time.perf_counter() - t0) / frames / step
    per_cpu = (time.process_time() - c0) / frames / step
    return {"s_per_frame": per, "cpu_s_per_frame": per_cpu, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): ``ru_maxrss`` would report the parent's peak, since
    Linux keeps it across fork and exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaling(names: list[str], frames: int, sizes) -> None:
    print("\ntime per frame and peak RSS against output size, default path (each case its own process)")
    print("| network | output | untiled CPU s/frame (wall) | untiled peak RSS | tiled CPU s/frame (wall) "
          "| tiled peak RSS | tile |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        for width, height in sizes:
            tile = 48 if name == "msitf" else 256  # on the network's input
            row = []
            for t in (None, tile):
                out = subprocess.run(
                    [sys.executable, __file__, "--case", json.dumps([name, width, height, t, frames])],
                    capture_output=True, text=True, check=True,
                ).stdout.strip().splitlines()[-1]
                row.append(json.loads(out))
            (u, t) = row
            print(f"| {name} | {width}x{height} | {u['cpu_s_per_frame']:.2f} ({u['s_per_frame']:.2f}) | "
                  f"{u['peak_rss_mb']:.0f} MB | {t['cpu_s_per_frame']:.2f} ({t['s_per_frame']:.2f}) | "
                  f"{t['peak_rss_mb']:.0f} MB | {tile} px |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["speed", "scaling", "all"], default="all")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--networks", nargs="+", default=["mstfn", "stifn", "msitf"])
    parser.add_argument("--quick", action="store_true", help="small frames, to check that the script runs")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and VapourSynth threads (0: all cores); 1 makes CPU seconds a fair measure "
                             "of work on a machine that other processes load")
    parser.add_argument("--sizes", type=int, default=3, help="scaling: the first N of 320x180, 640x360, 1280x720")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        core.num_threads = args.threads
        os.environ["BENCH_THREADS"] = str(args.threads)
    elif os.environ.get("BENCH_THREADS"):  # a scaling case started by a run with --threads
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
        core.num_threads = int(os.environ["BENCH_THREADS"])
    if args.case:
        name, width, height, tile, frames = json.loads(args.case)
        print(json.dumps(scaling_case(name, width, height, tile, frames)))
        return
    size = (160, 96) if args.quick else (640, 360)
    sizes = ((80, 48), (160, 96)) if args.quick else SIZES[: args.sizes]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, VapourSynth {core.num_threads} threads, "
          f"native bf16: {cpu_has_bf16()}, load average {os.getloadavg()[0]:.2f}")
    times: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.section in ("speed", "all"):
            for name in args.networks:
                speed(name, args.frames, size, Path(tmp), times)
        if args.section in ("scaling", "all"):
            scaling(args.networks, args.frames, sizes)


if __name__ == "__main__":
    main()
