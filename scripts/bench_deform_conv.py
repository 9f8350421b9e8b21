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


def before(input, offset, mask, weight, bias):
    """The implementation before the channels-last GEMM (3x3, stride 1, padding 1, groups 1), for an
    A/B in the same run: grid_sample bands, then weight @ columns per band and a concatenation."""
    b, c, h, w = input.shape
    out_ch, taps = weight.shape[0], 9
    n_off = offset.shape[1] // (2 * taps)
    cg = c // n_off
    off = offset.view(b, n_off, taps, 2, h, w)
    msk = mask.view(b, n_off, 1, taps, h, w)
    src = input.reshape(b * n_off, cg, h, w)
    w_mat = weight.reshape(1, out_ch, c * taps)
    tap_y = torch.arange(3, dtype=input.dtype).repeat_interleave(3)
    tap_x = torch.arange(3, dtype=input.dtype).repeat(3)
    norm_x = (((torch.arange(w, dtype=input.dtype) - 1).view(1, w) + tap_x.view(taps, 1)) * 2 + 1) / w - 1
    norm_y = (((torch.arange(h, dtype=input.dtype) - 1).view(1, h) + tap_y.view(taps, 1)) * 2 + 1) / h - 1
    norm_x, norm_y = norm_x.view(taps, 1, w), norm_y.view(taps, h, 1)
    rows = max(1, min(h, (1 << 23) // (c * taps * w * 4 * b)))
    chunks = []
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        nr = r1 - r0
        o = off[..., r0:r1, :]
        grid = torch.empty(b, n_off, taps, nr, w, 2)
        torch.add(norm_x, o[:, :, :, 1], alpha=2.0 / w, out=grid[..., 0])
        torch.add(norm_y[:, r0:r1], o[:, :, :, 0], alpha=2.0 / h, out=grid[..., 1])
        cols = F.grid_sample(src, grid.view(b * n_off, taps * nr, w, 2), align_corners=False)
        cols = cols.view(b, n_off, cg, taps, nr * w).mul_(msk[..., r0:r1, :].reshape(b, n_off, 1, taps, nr * w))
        chunks.append(torch.matmul(w_mat, cols.view(b, 1, c * taps, nr * w)).view(b, out_ch, nr, w))
    return torch.cat(chunks, dim=2) + bias.view(1, out_ch, 1, 1)


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
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", cores)))
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32")
    gen = torch.Generator().manual_seed(0)
    channels, groups, k, runs = 64, 8, 3, 15
    print(f"{'size (WxH)':>12} {'deform ms':>10} {'before ms':>10} {'conv2d ms':>10} {'ratio':>6} {'before':>7}")
    for width, height in ((180, 144), (90, 72)):
        x = torch.randn(1, channels, height, width, generator=gen)
        weight = torch.randn(channels, channels, k, k, generator=gen) * 0.05
        bias = torch.randn(channels, generator=gen)
        offset = 10 * torch.tanh(torch.randn(1, 2 * groups * k * k, height, width, generator=gen))
        mask = torch.rand(1, groups * k * k, height, width, generator=gen)
        with torch.inference_mode():
            now = modulated_deform_conv2d(x, offset, mask, weight, bias)
            assert (now - before(x, offset, mask, weight, bias)).abs().max() < 1e-3
            t_dcn, t_before, t_conv = _median_times(
                [
                    lambda: modulated_deform_conv2d(x, offset, mask, weight, bias),
                    lambda: before(x, offset, mask, weight, bias),
                    lambda: F.conv2d(x, weight, bias, 1, 1),
                ],
                runs,
            )
        print(f"{width:>7}x{height:<4} {t_dcn * 1e3:>10.2f} {t_before * 1e3:>10.2f} {t_conv * 1e3:>10.2f} "
              f"{t_dcn / t_conv:>6.2f} {t_before / t_conv:>7.2f}")


if __name__ == "__main__":
    main()
