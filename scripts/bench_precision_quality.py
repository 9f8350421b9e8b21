"""Quality of bf16 against fp32 for the networks that have trained weights: what precision="auto" rests on.

On a CPU without native bf16 PyTorch emulates it (bf16 operands, float32 accumulation, as AMX and
AVX512-BF16 compute it), so the numbers hold for those CPUs too; only the speed differs.

- MSTFN, shipped ``mstfn_6bit``, Carphone (not trained on) cut to 6 bits: PSNR-RGB against the
  8-bit truth in fp32 and bf16, and the largest difference between the two outputs in 10-bit codes.
- STIFN, the ``lite`` QP 37 training checkpoint (``checkpoints/stifn_qp37/last.pt``, when present),
  Cars (not trained on) through x265 at QP 37: PSNR-Y against the original in fp32 and bf16.
- MSITF: no trained weights exist, so no quality figure.
Usage: ./dev python scripts/bench_precision_quality.py [--frames N]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from vsrestore.models import load_model
from vsrestore.training.sources import load_sources
from vsrestore.training.tasks import bit_depth_pair, compression_pair

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "clips"


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def run(net: torch.nn.Module, dtype: torch.dtype, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.to(dtype)(x.to(dtype)).float()


def mstfn(frames: int) -> None:
    loaded = load_model("mstfn_6bit")
    rgb = load_sources([CLIPS / "carphone_pristine.mp4"], max_frames=frames + 4)[0].frames
    x16, truth16 = bit_depth_pair(rgb, 6)  # uint16 RGB, MSB-aligned
    bgr = torch.from_numpy(x16[..., ::-1].astype(np.float32) / 65535.0).permute(0, 3, 1, 2)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ys = [run(loaded.network, dtype, bgr[t - 2 : t + 3].reshape(1, 15, *bgr.shape[2:]))[0]
              for t in range(2, 2 + frames)]
        out[name] = torch.stack(ys).flip(1).permute(0, 2, 3, 1).numpy() * 65535.0  # RGB, 16-bit scale
    truth = truth16[2 : 2 + frames].astype(np.float64)
    codes10 = np.abs(out["fp32"] - out["bf16"]).max() / 64.0
    print(f"MSTFN mstfn_6bit, carphone, {frames} frames: PSNR-RGB fp32 {psnr(out['fp32'], truth, 65535):.3f} dB, "
          f"bf16 {psnr(out['bf16'], truth, 65535):.3f} dB; bf16 vs fp32 up to {codes10:.1f} 10-bit codes")


def stifn(frames: int) -> None:
    checkpoint = REPO / "checkpoints" / "stifn_qp37" / "last.pt"
    if not checkpoint.exists():
        print("STIFN: no checkpoint, skipped")
        return
    net = load_model(checkpoint).network
    rgb = load_sources([CLIPS / "cars_320x240_30f.i420"], max_frames=frames + 6)[0].frames
    decoded, original = compression_pair(rgb, "x265", 37, REPO / "checkpoints" / "encode-cache")
    y = torch.from_numpy(decoded.y.astype(np.float32) / 255.0)
    truth = original.y[3 : 3 + frames]
    res = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ys = [run(net, dtype, y[t - 3 : t + 4][None])[0, 0] for t in range(3, 3 + frames)]
        res[name] = np.clip(np.rint(torch.stack(ys).numpy() * 255.0), 0, 255)
    base = psnr(decoded.y[3 : 3 + frames], truth, 255)
    print(f"STIFN lite QP37 checkpoint, cars x265 QP37, {frames} frames: PSNR-Y decoded {base:.3f} dB, "
          f"fp32 {psnr(res['fp32'], truth, 255):.3f} dB, bf16 {psnr(res['bf16'], truth, 255):.3f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    mstfn(args.frames)
    stifn(args.frames)
    print("MSITF: no trained weights, no quality figure")


if __name__ == "__main__":
    main()
