"""Evaluation through the public filters, against baselines, on the same frames.

For each clip the ground truth is degraded as in training, the degraded clip is handed to
``vsrestore.mstfn`` / ``vsrestore.stifn`` / ``vsrestore.msitf`` exactly as a user's script would, and
PSNR / SSIM are measured on Y (BT.601) and on RGB at the peak of the compared samples. The result is
a markdown table (per clip and averaged) and side-by-side PNG crops.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import vapoursynth as vs

from .data import write_image, yuv420_to_rgb
from .metrics import psnr, rgb_to_y, ssim
from .sources import Source, load_sources
from .tasks import bit_depth_pair, compression_pair, spacetime_pair
from .vsclips import plane_array, rgb_clip, to_array, yuv420_clip

log = logging.getLogger("vsrestore.evaluate")
core = vs.core


@dataclass
class Result:
    clip: str
    method: str
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float


def score(clip: str, method: str, out: np.ndarray, gt: np.ndarray, peak: float) -> Result:
    """Metrics of RGB frames (T, H, W, 3) averaged over frames."""
    ys, yg = rgb_to_y(out.astype(np.float64), peak), rgb_to_y(gt.astype(np.float64), peak)
    per = [
        (psnr(ys[t], yg[t], peak), ssim(ys[t], yg[t], peak), psnr(out[t], gt[t], peak), ssim(out[t], gt[t], peak))
        for t in range(gt.shape[0])
    ]
    return Result(clip, method, *[float(np.mean([p[i] for p in per])) for i in range(4)])


def _crop(frames: np.ndarray, size: int = 96) -> np.ndarray:
    t, h, w = frames.shape[:3]
    y, x = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return frames[t // 2, y : y + size, x : x + size]


def write_crops(path: Path, panels: list[np.ndarray], peak: float, stretch: bool = False) -> None:
    """Panels side by side as an 8-bit PNG; ``stretch`` maps the ground truth's range to 0..255
    (so that false contours of a few 16-bit codes become visible)."""
    lo, hi = (float(panels[0].min()), float(panels[0].max())) if stretch else (0.0, peak)
    scale = 255.0 / max(hi - lo, 1e-9)
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = []
    for p in panels:
        row += [np.clip((p.astype(np.float64) - lo) * scale, 0, 255).round().astype(np.uint8), gap]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.concatenate(row[:-1], axis=1))


# --------------------------------------------------------------------------------------------------
# one function per task: returns the results and writes the crops for one clip


def eval_mstfn(src: Source, model: Any, options: dict[str, Any], crops: Path, **filter_args: Any) -> list[Result]:
    import vsrestore

    in_bits = int(options.get("in_bits", 8))
    low, gt = bit_depth_pair(src.frames, in_bits)
    v = (low >> (16 - in_bits)).astype(np.float64)
    replicated = np.zeros_like(v)
    for shift in range(16 - in_bits, -in_bits, -in_bits):  # v repeated down to bit 0
        replicated += np.floor(v * 2.0**shift)
    methods: dict[str, np.ndarray] = {
        "zero padding (input)": low,
        "bit replication": np.minimum(replicated, 65535).astype(np.uint16),
        "ideal gain": np.rint(v * 65535 / ((1 << in_bits) - 1)).astype(np.uint16),
    }
    out = vsrestore.mstfn(rgb_clip(low), in_bits=in_bits, out_depth=16, model=model, **filter_args)
    methods["vsrestore.mstfn"] = to_array(out)
    write_crops(crops / f"mstfn_{src.name}.png", [_crop(gt)] + [_crop(m) for m in methods.values()], 65535, stretch=True)
    return [score(src.name, name, m, gt, 65535.0) for name, m in methods.items()]


def eval_stifn(src: Source, model: Any, options: dict[str, Any], crops: Path, **filter_args: Any) -> list[Result]:
    import vsrestore

    qp, codec = int(options.get("qp", 37)), options.get("codec", "x265")
    decoded, yuv = compression_pair(src.frames, codec, qp, crops.parent / "encode-cache")
    clip = yuv420_clip(decoded)
    outputs = {"decoded (input)": clip}
    if hasattr(core, "deblock"):
        outputs[f"deblock (quant={qp})"] = core.deblock.Deblock(clip, quant=qp)
    outputs["vsrestore.stifn"] = vsrestore.stifn(clip, qp=qp, model=model, **filter_args)

    def to_rgb8(y: np.ndarray) -> np.ndarray:  # enhanced luma with the decoded chroma
        return np.rint(yuv420_to_rgb(y, decoded.u, decoded.v) * 255).astype(np.uint8)

    gt_rgb = np.rint(yuv420_to_rgb(*yuv) * 255).astype(np.uint8)  # what the encoder was given
    results, panels = [], [_crop(gt_rgb)]
    for name, node in outputs.items():
        y = plane_array(node, 0)
        rgb = to_rgb8(y)
        r = score(src.name, name, rgb, gt_rgb, 255.0)
        # Y metrics on the coded luma itself rather than on luma recomputed from RGB.
        r.psnr_y = float(np.mean([psnr(y[t], yuv.y[t], 255.0) for t in range(y.shape[0])]))
        r.ssim_y = float(np.mean([ssim(y[t], yuv.y[t], 255.0) for t in range(y.shape[0])]))
        results.append(r)
        panels.append(_crop(rgb))
    write_crops(crops / f"stifn_{src.name}.png", panels, 255)
    return results


def bicubic_up(lr: vs.VideoNode, width: int, height: int, degradation: str) -> vs.VideoNode:
    """Bicubic x4 aligned with the degradation.

    BD keeps HR pixels 0, 4, 8, ...: LR pixel i sits on HR pixel 4i, not at the centre of its 4x4
    block (4i + 1.5) as a centre-aligned resize assumes. HR pixel x samples LR position
    src_left + (x + 0.5) / 4 - 0.5, which is i at x = 4i for src_left = 0.375.
    """
    shift = 0.375 if degradation == "bd" else 0.0
    return core.resize.Bicubic(lr, width, height, src_left=shift, src_top=shift)


def eval_msitf(src: Source, model: Any, options: dict[str, Any], crops: Path, **filter_args: Any) -> list[Result]:
    import vsrestore

    n = (src.frames.shape[0] + 1) // 2  # input frames 0, 2, 4, ...; outputs 2n-1
    lr_all, hr = spacetime_pair(src.frames[: 2 * n - 1], options.get("degradation", "bd"))
    lr = lr_all[::2]
    gt = np.rint(hr * 255).astype(np.uint8)
    h, w = hr.shape[1:3]
    lr_clip = rgb_clip(lr)
    up = bicubic_up(lr_clip, w, h, options.get("degradation", "bd"))
    repeated = core.std.Interleave([up, up])[: 2 * n - 1]
    blended = core.std.Interleave([up, core.std.Merge(up, up[1:] + up[-1], 0.5)])[: 2 * n - 1]
    outputs = {
        "bicubic + frame repetition": repeated,
        "bicubic + linear interpolation": blended,
        "vsrestore.msitf": vsrestore.msitf(lr_clip, model=model, **filter_args),
    }
    results, panels = [], [_crop(gt)]
    for name, node in outputs.items():
        out = np.rint(np.clip(to_array(node), 0, 1) * 255).astype(np.uint8)
        results.append(score(src.name, name, out, gt, 255.0))
        panels.append(_crop(out))
    write_crops(crops / f"msitf_{src.name}.png", panels, 255)
    return results


EVALUATORS: dict[str, Callable[..., list[Result]]] = {"mstfn": eval_mstfn, "stifn": eval_stifn, "msitf": eval_msitf}


def evaluate(
    task: str,
    clips: list[str | Path],
    model: Any,
    out_dir: str | Path,
    *,
    options: dict[str, Any] | None = None,
    max_frames: int | None = 16,
    **filter_args: Any,
) -> Path:
    """Evaluate ``model`` on ``clips`` for ``task``; writes ``<out_dir>/results.md`` and crops."""
    if task not in EVALUATORS:
        raise ValueError(f"task must be one of {sorted(EVALUATORS)}, not {task!r}")
    out = Path(out_dir)
    results: list[Result] = []
    for src in load_sources(list(clips), max_frames):
        log.info("evaluating %s on %s (%d frames)", task, src.name, src.frames.shape[0])
        results += EVALUATORS[task](src, model, dict(options or {}), out / "crops", **filter_args)
    path = out / "results.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(task, results, options or {}, model))
    return path


def markdown(task: str, results: list[Result], options: dict[str, Any], model: Any) -> str:
    """A table per clip and the average over clips, method by method. ΔPSNR-Y is measured against
    each clip's first method: the degraded input or the simplest baseline."""
    methods = list(dict.fromkeys(r.method for r in results))
    reference = {r.clip: r.psnr_y for r in results if r.method == methods[0]}
    setting = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
    lines = [
        f"# {task} evaluation ({setting}; model: {getattr(model, 'name', model)})",
        "",
        f"ΔPSNR-Y: against {methods[0]}.",
        "",
        "| clip | method | PSNR-Y (dB) | ΔPSNR-Y (dB) | SSIM-Y | PSNR-RGB (dB) | SSIM-RGB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.clip} | {r.method} | {r.psnr_y:.2f} | {r.psnr_y - reference[r.clip]:+.2f} | {r.ssim_y:.4f} "
            f"| {r.psnr_rgb:.2f} | {r.ssim_rgb:.4f} |"
        )
    for m in methods:
        rs = [r for r in results if r.method == m]
        avg = [float(np.mean([getattr(r, k) for r in rs])) for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")]
        delta = float(np.mean([r.psnr_y - reference[r.clip] for r in rs]))
        lines.append(
            f"| **average** | {m} | {avg[0]:.2f} | {delta:+.2f} | {avg[1]:.4f} | {avg[2]:.2f} | {avg[3]:.4f} |"
        )
    return "\n".join(lines) + "\n"
