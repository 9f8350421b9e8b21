"""Quality of precision="auto" against fp32, through the filters' own inference path
(``vsrestore.filters.common.Runner``: bf16 autocast where the CPU computes it, fp32 weights, the
residual added in fp32): what precision="auto" rests on.

On a CPU without native bf16 "auto" is fp32 and PyTorch would emulate bf16; this script then
measures bf16 itself (bf16 operands, float32 accumulation, as AMX and AVX512-BF16 compute it), so
the numbers hold for those CPUs; only the speed differs.

- MSTFN, every shipped model, on held-out clips (Carphone, Cars; never trained on) cut to its
  ``in_bits``, called as the filter calls it (Stage I per triple, then the fusion): PSNR-RGB against
  the truth in fp32, "auto" (Stage I fp32, the fusion bf16) and bf16, each one's largest
  difference from fp32 in 10-bit codes, and the share of 10-bit codes (after rounding) that differ.
- STIFN, the ``lite`` QP 37 training checkpoint (``checkpoints/stifn_qp37/last.pt``, when present;
  no STIFN ships yet), Cars through x265 at QP 37: PSNR-Y against the original in fp32 and bf16.
- MSITF: no trained weights exist; the authors' architecture with the parity weights
  (``../shared/parity/msitf_official.npz``): bf16 against fp32 output as PSNR and largest difference,
  and each against the authors' float64 output.
Usage: ./dev python scripts/bench_precision_quality.py [--frames N]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from vsrestore.filters.common import Runner
from vsrestore.models import load, load_model
from vsrestore.models.shipped import find
from vsrestore.models import device as device_mod
from vsrestore.models.device import cpu_has_bf16
from vsrestore.training.sources import load_sources
from vsrestore.training.tasks import bit_depth_pair, compression_pair

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CLIPS = SHARED / "data" / "clips"
HELD_OUT_RGB = ("carphone_pristine.mp4", "cars_320x240_30f.i420")


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def runners(net: torch.nn.Module) -> dict[str, Runner]:
    """fp32, "auto" and bf16 Runners of ``net`` (bf16 emulated where the CPU lacks it: "auto" is
    then what it would be on a CPU that has it)."""
    if not cpu_has_bf16():
        device_mod.cpu_has_bf16 = lambda: True  # measure quality; speed is not the question here
    return {p: Runner("bench", net, "cpu", p) for p in ("fp32", "auto", "bf16")}


def mstfn(frames: int) -> None:
    print("| MSTFN model | clip | precision | PSNR-RGB (dB) | against fp32 | largest difference (10-bit codes) "
          "| 10-bit codes that differ |")
    print("|---|---|---|---|---|---|---|")
    for entry in find("mstfn"):
        loaded = load_model(entry.name)
        bits = int(entry.contract["in_bits"])
        run = runners(loaded.network)
        for clip in HELD_OUT_RGB:
            rgb = load_sources([CLIPS / clip], max_frames=frames + 4)[0].frames
            x16, truth16 = bit_depth_pair(rgb, bits)  # uint16 RGB, MSB-aligned
            bgr = torch.from_numpy(x16[..., ::-1].astype(np.float32) / 65535.0).permute(0, 3, 1, 2)
            out = {}
            for name, runner in run.items():  # as the filter calls it: Stage I per triple, then the fusion
                ys = []
                for t in range(2, 2 + frames):
                    g = [runner("stage1", *(bgr[k : k + 1] for k in range(t - 2 + i, t + 1 + i))) for i in range(3)]
                    ys.append(runner("fuse", *g, bgr[t : t + 1])[0])
                out[name] = np.clip(torch.stack(ys).flip(1).permute(0, 2, 3, 1).numpy() * 65535.0, 0, 65535)
            truth = truth16[2 : 2 + frames]
            ref = psnr(out["fp32"], truth, 65535)
            for name, y in out.items():
                p = psnr(y, truth, 65535)
                codes10 = np.abs(y - out["fp32"]).max() / 64.0
                share = float(np.mean(np.rint(y / 64.0) != np.rint(out["fp32"] / 64.0)))
                print(f"| {entry.name} | {Path(clip).stem} | {name} | {p:.3f} | {p - ref:+.3f} | {codes10:.2f} "
                      f"| {100 * share:.2f} % |", flush=True)


def stifn(frames: int) -> None:
    checkpoint = REPO / "checkpoints" / "stifn_qp37" / "last.pt"
    if not checkpoint.exists():
        print("STIFN: no checkpoint, skipped")
        return
    run = runners(load_model(checkpoint).network)
    rgb = load_sources([CLIPS / "cars_320x240_30f.i420"], max_frames=frames + 6)[0].frames
    decoded, original = compression_pair(rgb, "x265", 37, REPO / "checkpoints" / "encode-cache")
    y = torch.from_numpy(decoded.y.astype(np.float32) / 255.0)
    truth = original.y[3 : 3 + frames]
    res = {}
    for name, runner in run.items():
        if name == "auto":
            continue  # STIFN's "auto" is bf16 all through
        ys = [runner("forward", y[t - 3 : t + 4][None])[0, 0] for t in range(3, 3 + frames)]
        res[name] = np.clip(np.rint(torch.stack(ys).numpy() * 255.0), 0, 255)
    base, p32, p16 = (psnr(a, truth, 255) for a in (decoded.y[3 : 3 + frames], res["fp32"], res["bf16"]))
    print(f"\nSTIFN lite QP 37 training checkpoint, Cars through x265 at QP 37, {frames} frames: PSNR-Y decoded "
          f"{base:.3f} dB, fp32 {p32:.3f} dB, bf16 {p16:.3f} dB (bf16 - fp32 {p16 - p32:+.3f} dB)")


def msitf() -> None:
    npz = SHARED / "parity" / "msitf_official.npz"
    if not npz.exists():
        print(f"MSITF: {npz} not present, skipped")
        return
    data = np.load(npz)
    state = {k[2:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("w.")}
    run = runners(load(state, arch="msitf"))
    x = torch.from_numpy(data["in.x"])
    out = {name: runner("forward", x).numpy() for name, runner in run.items() if name != "auto"}
    ref = data["out"]
    print(f"\nMSITF, authors' architecture with the parity weights (no trained weights exist), input "
          f"{tuple(x.shape)}: bf16 against fp32 {psnr(out['bf16'], out['fp32'], 1.0):.2f} dB PSNR, largest "
          f"difference {np.abs(out['bf16'] - out['fp32']).max():.4f} (of 1.0); against the authors' float64 output "
          f"fp32 {psnr(out['fp32'], ref, 1.0):.2f} dB, bf16 {psnr(out['bf16'], ref, 1.0):.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    mstfn(args.frames)
    stifn(args.frames)
    msitf()


if __name__ == "__main__":
    main()
