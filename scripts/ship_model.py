"""Ship a trained model: export it into the package, list it in the manifest, evaluate it on the
held-out clips through its public filter, and write docs/weights/<name>.md (training, validation
curve, evaluation table, a side-by-side crop).

Usage:
    ./dev python scripts/ship_model.py checkpoints/mstfn_8bit/last.pt mstfn_8bit [--in-bits 8] [--max-frames 16]
    ./dev python scripts/ship_model.py checkpoints/stifn_qp37/last.pt stifn_lite_qp37 --qp 37
    ./dev python scripts/ship_model.py CHECKPOINT NAME --dry-run   # evaluate into runs/ only, ship nothing

The held-out clips (never used for training, see docs/training.md) are read from ../shared/data
(or $VSRESTORE_SHARED/data).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

import torch

from vsrestore.evaluation.evaluate import evaluate
from vsrestore.models import read_checkpoint, shipped
from vsrestore.training.train import export

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VSRESTORE_SHARED", ROOT.parent / "shared")) / "data"
HELD_OUT_8BIT = ["clips/carphone_pristine.mp4", "clips/cars_320x240_30f.i420", "clips/CiscoVT2people_320x192_9f.i420"]
HELD_OUT_DEEP = ["clips/sparks_480x270_5f_yuv420p10le.yuv"]


def held_out(task: str, in_bits: int | None) -> list[Path]:
    """The evaluation clips of a task: 8-bit truth for in_bits <= 6, truth above 8 bits otherwise."""
    names = HELD_OUT_8BIT + (HELD_OUT_DEEP if task == "mstfn" and (in_bits or 8) > 6 else [])
    return [DATA / n for n in names]


# Inference precisions every shipped model is evaluated at: bf16 must cost at most 0.05 dB.
PRECISIONS = ("fp32", "bf16")


def precision_gap(results_json: Path, task: str, precisions: tuple[str, ...]) -> str:
    """A sentence giving the average PSNR difference between the bf16 and fp32 rows."""
    if "bf16" not in precisions:
        return ("bf16 inference not measured (evaluated with --precisions fp32 only; the filters refuse bf16 on a "
                "CPU without native bf16); rerun this script on an AMX or AVX512-BF16 CPU to measure it.")
    rows = json.loads(results_json.read_text())

    def average(precision: str, key: str) -> float:
        values = [r[key] for r in rows if r["method"] == f"vsrestore.{task} ({precision})"]
        return sum(values) / len(values)

    gaps = {key: average("bf16", key) - average("fp32", key) for key in ("psnr_y", "psnr_rgb")}
    return (f"bf16 against fp32 inference, averaged over the clips: PSNR-Y {gaps['psnr_y']:+.3f} dB, "
            f"PSNR-RGB {gaps['psnr_rgb']:+.3f} dB.")


def curve_table(history: list[dict]) -> str:
    rows = []
    if "baseline_psnr" in history[0]:
        rows += [f"The classical baseline on the same validation patches: {history[0]['baseline_psnr']:.3f} dB.", ""]
    rows += ["| step | training loss | validation PSNR (dB) |", "|---|---|---|"]
    for h in history:
        loss = "—" if h.get("loss") is None else f"{h['loss']:.5f}"
        rows.append(f"| {h['step']} | {loss} | {h['val_psnr']:.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("name")
    parser.add_argument("--in-bits", type=int, help="mstfn: the contract shipped (overrides the run's)")
    parser.add_argument("--qp", type=int, help="stifn: the QP shipped (overrides the run's)")
    parser.add_argument("--max-frames", type=int, default=16)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="inference precisions evaluated (bf16 needs a CPU with native bf16)")
    parser.add_argument("--dry-run", action="store_true", help="evaluate into runs/ship/<name> only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    precisions = tuple(args.precisions)
    contract = {k: v for k, v in (("in_bits", args.in_bits), ("qp", args.qp)) if v is not None}
    staging = ROOT / "runs" / "ship" / args.name
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / f"{args.name}.safetensors" if args.dry_run else shipped.WEIGHTS_DIR / f"{args.name}.safetensors"
    export(args.checkpoint, target, args.name, contract)
    _, meta = read_checkpoint(target)
    task = meta["task"]
    options = {k: meta[k] for k in ("in_bits", "qp", "codec", "degradation") if k in meta}
    table = evaluate(task, held_out(task, meta.get("in_bits")), str(target), staging / "eval", options=options,
                     max_frames=args.max_frames, precisions=precisions).read_text()
    precision_note = precision_gap(staging / "eval" / "results.json", task, precisions)
    if args.dry_run:
        print(table + "\n" + precision_note)
        return
    shipped.add_to_manifest(target, meta)

    docs = ROOT / "docs" / "weights"
    docs.mkdir(parents=True, exist_ok=True)
    crops = sorted((staging / "eval" / "crops").glob("*.png"))
    for crop in crops:
        shutil.copy(crop, docs / f"{args.name}_{crop.stem.split('_', 1)[1]}.png")
    training = meta["training"]
    lines = [
        f"# {args.name}",
        "",
        f"- architecture: {meta['arch'].upper()}, preset `{training['config']}` "
        f"({sum(t.numel() for t in read_checkpoint(target)[0].values()):,} parameters)",
        "- contract: " + ", ".join(f"{k}={v}" for k, v in options.items()),
        f"- training: {training['steps']} steps of {training['batch']} patches of {training['patch']}x{training['patch']}, "
        f"{training['minutes']} minutes on the CPU (torch {torch.__version__}), lr {training.get('lr')}"
        + (f", fine-tuned from `{training['init']}`" if training.get("init") else ""),
        f"- training data: {', '.join(training['data'])}; validation: {', '.join(training['validation_data'])}",
        f"- sha256: `{shipped.sha256_of(target)}`",
        "",
        "## Evaluation on held-out clips (never trained on)",
        "",
        f"`./dev python scripts/ship_model.py {args.checkpoint} {args.name}"
        + "".join(f" --{k.replace('_', '-')} {v}" for k, v in contract.items()) + f" --max-frames {args.max_frames}"
        + ("" if precisions == PRECISIONS else " --precisions " + " ".join(precisions)) + "`",
        "",
        table.split("\n", 2)[2].strip(),
        "",
        precision_note,
        "",
        "Crops (ground truth, then each method in table order): "
        + ", ".join(f"`{args.name}_{c.stem.split('_', 1)[1]}.png`" for c in crops),
        "",
        "## Validation curve (fixed patches of the validation clip; PSNR at peak 1)",
        "",
        curve_table(meta["validation"]["history"]),
        "",
    ]
    (docs / f"{args.name}.md").write_text("\n".join(lines))
    print(f"shipped {target} and docs/weights/{args.name}.md")


if __name__ == "__main__":
    main()
