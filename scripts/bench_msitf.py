"""Benchmark: MSITF seconds per window and per output frame on CPU (float32).

One forward of a (1, 4, 3, 144, 180) window (the authors' configuration, random weights)
produces 7 output frames at 576x720. Prints the median seconds per window and per output
frame, and what it would cost to recompute the whole window for each of its 7 outputs
(7 forwards) instead of producing all 7 from one forward.
Run: .venv/bin/python scripts/bench_msitf.py [--runs N] [--height H --width W]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from vsrestore.networks.msitf import MSITF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--width", type=int, default=180)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(cores)
    torch.manual_seed(0)
    model = MSITF().eval()
    cfg = model.config
    x = torch.rand(1, cfg.input_frames, 3, args.height, args.width)
    outputs = cfg.output_frames
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32, "
        f"input {tuple(x.shape)} -> {outputs} frames of {4 * args.height}x{4 * args.width}"
    )
    times = []
    with torch.inference_mode():
        model(x)  # warm-up (allocator, kernel selection, mask cache)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    window = statistics.median(times)
    print(f"runs: {', '.join(f'{t:.2f}' for t in times)} s")
    print(f"seconds per window (median of {args.runs}): {window:.2f}")
    print(f"seconds per output frame (window / {outputs}): {window / outputs:.2f}")
    print(
        f"recomputing the window for each of its {outputs} outputs: {outputs * window:.2f} s per "
        f"window ({window:.2f} s per output frame), {outputs}x the cost of one forward for all"
    )


if __name__ == "__main__":
    main()
