"""Benchmark of ``vsrestore render``: 1 vs 2 local workers on a CPU-bound script, and Ray's cost per chunk.

- Speed-up: a script with scene cuts every 15 frames (``--frames`` in all) through a tiny MSTFN with
  random weights (CPU-bound), rendered to FFV1 with 1 and 2 local workers and, for reference, by one
  ``vspipe`` process; runs interleaved (vspipe, 1, 2, vspipe, 1, 2, ...), medians reported.
- Ray overhead: a trivial script (no torch) split into one-frame chunks, rendered by one local
  worker at a time and by one Ray task at a time on a local Ray instance (started once, timed
  apart); the difference per chunk is what Ray adds to each chunk.

Usage: ./dev python scripts/bench_render.py [--frames 60] [--size 160x120] [--repeats 3] [--chunks 8]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vsrestore.render import EncoderSettings, RenderOptions, render

HEAVY = '''
from fractions import Fraction

import torch

import vsrestore
from vsrestore.evaluation.vsclips import scene_cut_clip
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig

length = {frames}
src = vsrestore.scene_changes(scene_cut_clip(length, range(15, length, 15), {width}, {height}, Fraction(30000, 1001)))
torch.manual_seed(0)
net = MSTFN(MSTFNConfig(features=16, num_rpb=1, num_tail=1)).eval()  # random weights: speed only
vsrestore.mstfn(src, in_bits=6, out_depth=10, model=net).set_output()
src.set_output(1)
'''

TRIVIAL = '''
import vapoursynth as vs

core = vs.core
blank = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length={chunks}, fpsnum=25, fpsden=1)
blank.std.SetFrameProps(_SceneChangePrev=1).set_output()  # every frame starts a scene: one chunk each
'''


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
    try:
        return bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(tmp: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=8, help="one-frame chunks of the Ray overhead test")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    heavy, trivial = tmp / "heavy.vpy", tmp / "trivial.vpy"
    heavy.write_text(HEAVY.format(frames=args.frames, width=width, height=height))
    trivial.write_text(TRIVIAL.format(chunks=args.chunks))
    log = lambda line: print(f"  {line}", file=sys.stderr)  # noqa: E731
    vspipe = Path(sys.executable).parent / "vspipe"

    def run(script: Path, workers: int, **kw) -> float:
        opts = RenderOptions(script=script, output=tmp / "out.mkv", encoder=EncoderSettings("ffv1"), workers=workers,
                             min_chunk=kw.pop("min_chunk", 15), fresh=True, **kw)
        return timed(lambda: render(opts, log=log))

    times: dict[str, list[float]] = {"vspipe": [], "1 worker": [], "2 workers": []}
    for r in range(args.repeats):
        for name in times:
            print(f"run {r + 1}/{args.repeats}: {name}", file=sys.stderr)
            if name == "vspipe":
                t = timed(lambda: subprocess.run([str(vspipe), str(heavy), "--"], check=True, capture_output=True))
            else:
                t = run(heavy, int(name[0]))
            times[name].append(t)
            print(f"  {t:.1f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    scenes = len(range(15, args.frames, 15)) + 1
    print(f"## vsrestore render, {args.frames} frames of {width}x{height} (tiny MSTFN, random weights), "
          f"{scenes} scenes, FFV1")
    print("| run | times (s) | median (s) |\n|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {', '.join(f'{t:.1f}' for t in v)} | {med[k]:.1f} |")
    print(f"\n2 workers over 1: x{med['1 worker'] / med['2 workers']:.2f}; "
          f"1 worker over one vspipe: x{med['vspipe'] / med['1 worker']:.2f}")

    if args.no_ray:
        return 0
    try:
        import ray
    except ImportError:
        print("\nRay overhead: skipped (pip install 'vsrestore[ray]')")
        return 0
    init = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False))
    over: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        for r in range(2):
            for name in over:
                extra = {"ray": "local", "threads": 1} if name == "ray" else {}
                print(f"trivial, {args.chunks} one-frame chunks, {name} ({r + 1}/2)", file=sys.stderr)
                over[name].append(run(trivial, 1, min_chunk=1, **extra))
    finally:
        ray.shutdown()
    per = {k: statistics.median(v) / args.chunks for k, v in over.items()}
    print(f"\n## Ray overhead ({args.chunks} one-frame chunks of a trivial script, one at a time)")
    print(f"| | per chunk (s) |\n|---|---|\n| local process | {per['local']:.2f} |\n| Ray task | {per['ray']:.2f} |")
    print(f"\nRay adds {per['ray'] - per['local']:.2f} s per chunk; starting a local Ray instance took {init:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
