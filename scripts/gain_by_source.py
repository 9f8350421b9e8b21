"""How much a training run's weights gain over the decoded input on each source, one at a time.

For a STIFN run: fixed random 64x64 patches of each source, prepared exactly as the run prepared its
training data (the same QP, frames per clip and ``--shrink-videos``; the run's x265 encode cache is
reused), scored as PSNR-Y of the mean squared error of the decoded centre frame and of the network
(its weight average, fp32). Training sources and held-out clips side by side show whether a run
learnt what the held-out footage needs or a kind of material of its own (STIFN gained +0.5..+2.8 dB
on its panned photographs, +0.1..+0.5 on its videos and +0.2 on held-out video: docs/training.md).
Usage: ./dev python scripts/gain_by_source.py CHECKPOINT SOURCE... [--patches N] [--shrink N]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from vsrestore.models.registry import get_arch
from vsrestore.training.sources import load_sources
from vsrestore.training.tasks import make_task
from vsrestore.training.train import batch, forward, read_training_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a STIFN training checkpoint (checkpoints/<run>/last.pt)")
    parser.add_argument("sources", nargs="+", help="clips, frame folders or photographs, as `vsrestore train --data`")
    parser.add_argument("--patches", type=int, default=48, help="patches per source (default 48)")
    parser.add_argument("--shrink", type=int, default=None, help="area-average videos by this (default: the run's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    state = read_training_checkpoint(args.checkpoint)
    settings = state["settings"]
    if settings["task"] != "stifn":
        raise SystemExit(f"{args.checkpoint} is a {settings['task']} run; this script scores STIFN runs")
    net = get_arch("stifn").build(state["config"])
    net.load_state_dict(state.get("ema", state["model"]))
    net.eval()
    shrink = settings["shrink_videos"] if args.shrink is None else args.shrink
    cache = Path(args.checkpoint).resolve().parent.parent / "encode-cache"
    print(f"{args.checkpoint}: step {state['step']}, QP {settings['task_options']['qp']}, videos shrunk {shrink}x")
    print("| source | decoded PSNR-Y (dB) | network gain (dB) |\n|---|---|---|")
    for source in args.sources:
        task = make_task("stifn", **settings["task_options"])
        task.prepare(load_sources([source], settings["max_frames"], shrink), cache)
        rng = np.random.default_rng(7)
        decoded, restored = [], []
        with torch.inference_mode():
            for _ in range(math.ceil(args.patches / 4)):
                x, y = batch(task, rng, 4, 64, torch.device("cpu"))
                decoded.append(((x[:, 3:4] - y) ** 2).mean().item())
                restored.append(((forward(net, x).clamp(0, 1) - y) ** 2).mean().item())
        gain = 10 * math.log10(np.mean(decoded) / np.mean(restored))
        print(f"| {Path(source).name} | {10 * math.log10(1 / np.mean(decoded)):.2f} | {gain:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
