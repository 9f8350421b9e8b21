"""Training steps per second of each network: fp32, fp32 channels_last, bf16 autocast channels_last.

The modes are interleaved round by round (this machine is shared and noisy) and each figure is the
median over rounds. Batches are random tensors of each task's shapes: speed does not depend on
their content. Also prints whether the CPU computes bf16 natively (AMX-BF16 / AVX512-BF16).
Usage: ./dev python scripts/bench_train_step.py [--rounds N] [--steps N] [--task mstfn ...]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vsrestore.models.device import cpu_has_bf16, to_channels_last
from vsrestore.models.registry import get_arch
from vsrestore.training.tasks import make_task
from vsrestore.training.train import channels_last, train_step

# task -> (config, batch, patch, options): the shapes the shipped models train with.
RUNS = {
    "mstfn": ("small", 8, 64, {"in_bits": 8}),
    "stifn": ("lite", 8, 64, {"qp": 37}),
    "msitf": ("small", 4, 24, {}),
}
MODES = {"fp32": (None, False), "fp32 channels_last": (None, True), "bf16 channels_last": (torch.bfloat16, True)}


def shapes(task: str, batch: int, patch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return {
        "mstfn": ((batch, 15, patch, patch), (batch, 3, patch, patch)),
        "stifn": ((batch, 7, patch, patch), (batch, 1, patch, patch)),
        "msitf": ((batch, 4, 3, patch, patch), (batch, 7, 3, 4 * patch, 4 * patch)),
    }[task]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode and round")
    parser.add_argument("--task", nargs="*", default=list(RUNS))
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_bf16()}")
    for name in args.task:
        config, size, patch, options = RUNS[name]
        task = make_task(name, **options)
        arch = get_arch(task.arch)
        xs, ys = shapes(name, size, patch)
        x, y = torch.rand(xs), torch.rand(ys)
        runs = {}
        for mode, (dtype, cl) in ((m, MODES[m]) for m in args.modes):
            net = arch.build(config).train()
            if cl:
                net = to_channels_last(net)
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)
            scaler = torch.amp.GradScaler("cpu", enabled=False)
            inputs = (channels_last(x), channels_last(y)) if cl else (x, y)
            train_step(net, opt, scaler, *inputs, dtype)  # warm-up
            runs[mode] = (net, opt, scaler, inputs, dtype)
        times: dict[str, list[float]] = {m: [] for m in args.modes}
        for _ in range(args.rounds):
            for mode, (net, opt, scaler, inputs, dtype) in runs.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    train_step(net, opt, scaler, *inputs, dtype)
                times[mode].append((time.perf_counter() - start) / args.steps)
        base = statistics.median(next(iter(times.values())))
        params = sum(p.numel() for p in next(iter(runs.values()))[0].parameters())
        print(f"{name} {config} ({params:,} params), batch {size} of {patch}x{patch}:", flush=True)
        for mode, ts in times.items():
            med = statistics.median(ts)
            print(f"  {mode:20s} {1 / med:7.2f} steps/s  ({med:.3f} s/step, x{base / med:.2f} vs fp32)")


if __name__ == "__main__":
    main()
