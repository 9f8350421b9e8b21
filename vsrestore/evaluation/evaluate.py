"""Evaluation through the public filters, against baselines, on the same frames.

For each clip the ground truth is degraded as in training, the degraded clip is handed to
``vsrestore.mstfn`` / ``vsrestore.stifn`` / ``vsrestore.msitf`` exactly as a user's script would, and
PSNR / SSIM are measured on Y (BT.601) and on RGB at the peak of the compared samples. The result is
a markdown table (per clip and averaged) and side-by-side PNG crops.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import vapoursynth as vs

from ..training.data import write_image, yuv420_to_rgb
from .baselines import bit_replication, cambi, cambi_available, deband_grid, mid_rise, placebo_available
from .metrics import psnr, rgb_to_y, ssim
from ..training.sources import Source, load_sources
from ..training.tasks import bit_depth_pair, compression_pair, spacetime_pair
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
    cambi: float | None = None  # banding (CAMBI of 10-bit luma), bit-depth evaluation only


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


def network_outputs(name: str, run: Callable[..., Any], precisions: Sequence[str], **filter_args: Any) -> dict[str, Any]:
    """The public filter ``vsrestore.<name>`` as one row, or one row per precision when several are
    compared (``"vsrestore.mstfn (bf16)"``): ``run(**filter_args, precision=p)`` is the filter call."""
    if len(precisions) <= 1:
        return {f"vsrestore.{name}": run(**filter_args, **({"precision": precisions[0]} if precisions else {}))}
    return {f"vsrestore.{name} ({p})": run(**filter_args, precision=p) for p in precisions}


# --------------------------------------------------------------------------------------------------
# one function per task: returns the results and writes the crops for one clip


def eval_mstfn(
    src: Source, model: Any, options: dict[str, Any], crops: Path, precisions: Sequence[str] = (), **filter_args: Any
) -> list[Result]:
    import vsrestore

    in_bits = int(options.get("in_bits", 8))
    low, gt = bit_depth_pair(src.frames, in_bits)
    midrise = mid_rise(low, in_bits)
    methods: dict[str, np.ndarray] = {
        "zero padding (input)": low,
        "mid-rise": midrise,
        "bit replication": bit_replication(low, in_bits),
    }
    if placebo_available():
        methods.update(deband_grid(midrise, in_bits))
    outputs = network_outputs("mstfn", vsrestore.mstfn, precisions, clip=rgb_clip(low), in_bits=in_bits,
                              out_depth=16, model=model, **filter_args)
    methods.update({name: to_array(out) for name, out in outputs.items()})
    shown = [m for name, m in methods.items() if not name.startswith("placebo") or "threshold 1 " in name]
    write_crops(crops / f"mstfn_{src.name}.png", [_crop(gt)] + [_crop(m) for m in shown], 65535, stretch=True)
    results = [score(src.name, name, m, gt, 65535.0) for name, m in methods.items()]
    if cambi_available():
        for r in results:
            r.cambi = cambi(methods[r.method])
        results.append(Result(src.name, "ground truth", math.inf, 1.0, math.inf, 1.0, cambi(gt)))
    return results


def eval_stifn(
    src: Source, model: Any, options: dict[str, Any], crops: Path, precisions: Sequence[str] = (), **filter_args: Any
) -> list[Result]:
    import vsrestore

    qp, codec = int(options.get("qp", 37)), options.get("codec", "x265")
    decoded, yuv = compression_pair(src.frames, codec, qp, crops.parent / "encode-cache")
    clip = yuv420_clip(decoded)
    outputs = {"decoded (input)": clip}
    if hasattr(core, "deblock"):
        outputs[f"deblock (quant={qp})"] = core.deblock.Deblock(clip, quant=qp)
    outputs.update(network_outputs("stifn", vsrestore.stifn, precisions, clip=clip, qp=qp, model=model, **filter_args))

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


def eval_msitf(
    src: Source, model: Any, options: dict[str, Any], crops: Path, precisions: Sequence[str] = (), **filter_args: Any
) -> list[Result]:
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
        **network_outputs("msitf", vsrestore.msitf, precisions, clip=lr_clip, model=model, **filter_args),
    }
    results, panels = [], [_crop(gt)]
    for name, node in outputs.items():
        out = np.rint(np.clip(to_array(node), 0, 1) * 255).astype(np.uint8)
        results.append(score(src.name, name, out, gt, 255.0))
        if gt.shape[0] > 1:  # outputs 1, 3, 5, ...: the frames no input holds
            results.append(score(src.name, f"{name}, in-between frames", out[1::2], gt[1::2], 255.0))
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
    precisions: Sequence[str] = (),
    **filter_args: Any,
) -> Path:
    """Evaluate ``model`` on ``clips`` for ``task``; writes ``<out_dir>/results.md`` (and its rows
    as ``results.json``) and crops.

    ``precisions`` (e.g. ``("fp32", "bf16")``) runs the filter once per precision, a row each; none
    runs it at its default (``"auto"``)."""
    if task not in EVALUATORS:
        raise ValueError(f"task must be one of {sorted(EVALUATORS)}, not {task!r}")
    out = Path(out_dir)
    results: list[Result] = []
    for src in load_sources(list(clips), max_frames):
        log.info("evaluating %s on %s (%d frames)", task, src.name, src.frames.shape[0])
        results += EVALUATORS[task](src, model, dict(options or {}), out / "crops", tuple(precisions), **filter_args)
    path = out / "results.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(task, results, options or {}, model))
    # the same figures for scripts (infinite PSNRs of the ground-truth row become null)
    rows = [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in dataclasses.asdict(r).items()}
            for r in results]
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    return path


# The row each task's gains are measured against: the baseline its targets name.
REFERENCE = {"mstfn": "mid-rise", "stifn": "decoded (input)", "msitf": "bicubic + linear interpolation"}


def keep_best_deband(results: list[Result]) -> list[Result]:
    """Of the ``placebo.Deband`` grid, only the setting with the best average PSNR-RGB."""
    grid = {r.method for r in results if r.method.startswith("placebo.Deband")}
    if not grid:
        return results
    best = max(grid, key=lambda m: np.mean([r.psnr_rgb for r in results if r.method == m]))
    return [r for r in results if r.method not in grid or r.method == best]


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def markdown(task: str, results: list[Result], options: dict[str, Any], model: Any) -> str:
    """A table per clip and the average over clips, method by method, with the gains over the
    task's reference baseline (:data:`REFERENCE`, else each clip's first method)."""
    results = keep_best_deband(results)
    methods = list(dict.fromkeys(r.method for r in results))
    ref_method = REFERENCE[task] if REFERENCE.get(task) in methods else methods[0]
    reference = {r.clip: r for r in results if r.method == ref_method}
    has_cambi = any(r.cambi is not None for r in results)
    setting = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
    lines = [
        f"# {task} evaluation ({setting}; model: {getattr(model, 'name', model)})",
        "",
        f"Δ: against {ref_method}." + (" CAMBI: banding of 10-bit luma (lower is better)." if has_cambi else ""),
        "",
        "| clip | method | PSNR-Y (dB) | ΔPSNR-Y | SSIM-Y | PSNR-RGB (dB) | ΔPSNR-RGB | SSIM-RGB |"
        + (" CAMBI |" if has_cambi else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if has_cambi else ""),
    ]

    def row(clip: str, method: str, values: dict[str, float | None]) -> str:
        cells = [_cell(values["psnr_y"], ".2f"), _cell(values["d_y"], "+.2f"), _cell(values["ssim_y"], ".4f"),
                 _cell(values["psnr_rgb"], ".2f"), _cell(values["d_rgb"], "+.2f"), _cell(values["ssim_rgb"], ".4f")]
        if has_cambi:
            cells.append(_cell(values.get("cambi"), ".3f"))
        return f"| {clip} | {method} | " + " | ".join(cells) + " |"

    def values(r: Result) -> dict[str, float | None]:
        ref = reference.get(r.clip)
        finite = math.isfinite(r.psnr_y) and ref is not None
        return {**dataclasses.asdict(r), "d_y": r.psnr_y - ref.psnr_y if finite else None,
                "d_rgb": r.psnr_rgb - ref.psnr_rgb if finite else None}

    per = [values(r) for r in results]
    for r, v in zip(results, per):
        lines.append(row(r.clip, r.method, v))
    for m in methods:
        vs_ = [v for r, v in zip(results, per) if r.method == m]
        avg = {k: (float(np.mean([v[k] for v in vs_])) if all(v[k] is not None for v in vs_) else None)
               for k in ("psnr_y", "d_y", "ssim_y", "psnr_rgb", "d_rgb", "ssim_rgb", "cambi")}
        lines.append(row("**average**", m, avg))
    return "\n".join(lines) + "\n"
