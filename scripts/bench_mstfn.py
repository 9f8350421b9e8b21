"""Seconds per frame of vsrestore.mstfn on the CPU at 480x270, authors' config, with and without
Stage-I reuse (sequential rendering, as vspipe does).

Usage: ./dev python scripts/bench_mstfn.py [--frames N] [--width W --height H]
"""
from __future__ import annotations

import argparse
import time

import torch
import vapoursynth as vs

import vsrestore
from vsrestore.networks.mstfn import MSTFN

core = vs.core


def seconds_per_frame(clip: vs.VideoNode, frames: int, **kwargs) -> float:
    out = vsrestore.mstfn(clip, device="cpu", **kwargs)
    out.get_frame(0)  # warm-up (fills the Stage-I cache like a running render would)
    start = time.perf_counter()
    for n in range(1, frames + 1):
        out.get_frame(n)
    return (time.perf_counter() - start) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    args = parser.parse_args()
    net = MSTFN()  # the authors' config; speed does not depend on the weights
    clip = core.std.BlankClip(format=vs.RGB24, width=args.width, height=args.height, length=args.frames + 3)
    print(f"MSTFN authors' config, {args.width}x{args.height} RGB24 -> RGB48, torch threads={torch.get_num_threads()}")
    with_reuse = seconds_per_frame(clip, args.frames, model=net, stage1_cache=True)
    without = seconds_per_frame(clip, args.frames, model=net, stage1_cache=False)
    print(f"  with Stage-I reuse:    {with_reuse:.2f} s/frame")
    print(f"  without Stage-I reuse: {without:.2f} s/frame")
    print(f"  ratio: {without / with_reuse:.2f}x")


if __name__ == "__main__":
    main()
