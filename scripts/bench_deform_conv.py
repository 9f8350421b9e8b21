"""Benchmark: pure-PyTorch modulated deformable convolution vs a dense F.conv2d on CPU.

Prints, for float32 on CPU, the median time of `modulated_deform_conv2d` and of an
`F.conv2d` with the same shapes (64 -> 64 channels, 3x3, 8 offset groups), and their ratio.
Run: .venv/bin/python scripts/bench_deform_conv.py
"""
from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

from vsrestore.networks.deform_conv import modulated_deform_conv2d


def _median_times(fns, runs: int) -> list[float]:
    """Median wall time of each callable; the callables alternate so that load from other
    processes on the machine affects all of them alike and the ratio stays meaningful."""
    for fn in fns:
        fn()  # warm-up: first calls allocate buffers and pick kernels
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(cores)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32")
    gen = torch.Generator().manual_seed(0)
    channels, groups, k, runs = 64, 8, 3, 15
    print(f"{'size (WxH)':>12} {'deform ms':>10} {'conv2d ms':>10} {'ratio':>6}")
    for width, height in ((180, 144), (90, 72)):
        x = torch.randn(1, channels, height, width, generator=gen)
        weight = torch.randn(channels, channels, k, k, generator=gen) * 0.05
        bias = torch.randn(channels, generator=gen)
        offset = 10 * torch.tanh(torch.randn(1, 2 * groups * k * k, height, width, generator=gen))
        mask = torch.rand(1, groups * k * k, height, width, generator=gen)
        with torch.inference_mode():
            t_dcn, t_conv = _median_times(
                [
                    lambda: modulated_deform_conv2d(x, offset, mask, weight, bias),
                    lambda: F.conv2d(x, weight, bias, 1, 1),
                ],
                runs,
            )
        print(f"{width:>7}x{height:<4} {t_dcn * 1e3:>10.2f} {t_conv * 1e3:>10.2f} {t_dcn / t_conv:>6.2f}")


if __name__ == "__main__":
    main()
