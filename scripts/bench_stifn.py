"""Seconds per frame of vsrestore.stifn on the CPU at 416x240 and 1280x720, both sizes.

Runs the public filter (random weights: speed does not depend on them) on a YUV420P8 clip.
Usage: ./dev python scripts/bench_stifn.py [--frames N]
"""
from __future__ import annotations

import argparse
import time

import torch
import vapoursynth as vs

import vsrestore
from vsrestore.networks.stifn import STIFN, PRESETS

core = vs.core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    print(f"torch threads={torch.get_num_threads()}, core.num_threads={core.num_threads}")
    for size in ("r3", "r3l"):
        net = STIFN(PRESETS[size])
        params = sum(p.numel() for p in net.parameters())
        for width, height in ((416, 240), (1280, 720)):
            clip = core.std.BlankClip(format=vs.YUV420P8, width=width, height=height, length=args.frames + 1)
            out = vsrestore.stifn(clip, model=net, device="cpu")
            out.get_frame(0)  # warm-up
            start = time.perf_counter()
            for n in range(1, args.frames + 1):
                out.get_frame(n)
            per = (time.perf_counter() - start) / args.frames
            print(f"STIFN-{size.upper()} ({params:,} params) {width}x{height}: {per:.3f} s/frame")


if __name__ == "__main__":
    main()
