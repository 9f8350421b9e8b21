"""The ``vsrestore`` command line.

- ``vsrestore encode OUT``: Y4M from standard input (e.g. ``vspipe -c y4m script.vpy -``) encoded with
  PyAV's bundled x265/x264, so a render needs no separate encoder install;
- ``vsrestore train``: train a network (``--task mstfn|stifn|msitf``), resumable;
- ``vsrestore export``: a training checkpoint to ``.safetensors`` with metadata;
- ``vsrestore evaluate``: run a filter with given weights on clips against baselines;
- ``vsrestore info``: the architectures and shipped models.
"""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

CODECS = {"x265": "libx265", "x264": "libx264", "ffv1": "ffv1"}


def encode(source, out_path: Path, *, codec: str = "x265", crf: int | None = None, qp: int | None = None,
           preset: str = "medium", params: str = "") -> int:
    """Encode a Y4M stream (path or binary file object) to ``out_path``; returns the frame count."""
    import av

    options: dict[str, str] = {}
    if codec in ("x265", "x264"):
        options["preset"] = preset
        if qp is not None:
            options["qp"] = str(qp)
        elif crf is not None:
            options["crf"] = str(crf)
        if codec == "x265":
            options["x265-params"] = ":".join(filter(None, ["log-level=error", params]))
        elif params:
            options["x264-params"] = params
    from tqdm import tqdm

    count = 0
    # The bar goes to stderr and only when it is a terminal: stdout may be a pipe.
    progress = tqdm(desc=f"encoding {out_path.name}", unit="frame", disable=None, leave=False)
    try:
        src = av.open(source, format="yuv4mpegpipe")
    except av.error.FFmpegError as exc:
        raise ValueError(f"no Y4M video on the input ({exc}); did the script render?") from None
    with progress, src, av.open(str(out_path), "w") as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = dst.add_stream(CODECS[codec], rate=rate, options=options)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = vin.codec_context.pix_fmt
        # Frames are stamped in the encoder's own time base: stamping them in the stream's makes
        # libx265 reorder B-frames on wrong timestamps (the muxer then rejects the packets).
        time_base = vout.codec_context.time_base or 1 / rate
        for frame in src.decode(vin):
            frame.time_base = time_base
            frame.pts = round(count / (rate * time_base))
            dst.mux(vout.encode(frame))
            count += 1
            progress.update()
        dst.mux(vout.encode(None))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vsrestore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="encode Y4M from stdin (vspipe -c y4m ... -) with x265/x264")
    enc.add_argument("output", type=Path)
    enc.add_argument("--codec", choices=sorted(CODECS), default="x265")
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--crf", type=int)
    rate.add_argument("--qp", type=int)
    enc.add_argument("--preset", default="medium")
    enc.add_argument("--params", default="", help="extra x265-params/x264-params, key=value:key=value")
    sub.add_parser("info", help="list architectures and shipped models")

    tr = sub.add_parser("train", help="train a network; rerunning with the same --out resumes")
    tr.add_argument("--task", required=True, choices=["mstfn", "stifn", "msitf"])
    tr.add_argument("--out", required=True, help="run folder (checkpoint last.pt, train.log)")
    tr.add_argument("--data", required=True, nargs="+", help="training clips: folders, videos, raw .yuv")
    tr.add_argument("--val-data", nargs="*", default=[], help="validation clips (default: the training clips)")
    tr.add_argument("--config", default="tiny", help="preset: tiny, small/authors (mstfn), r3/r3l (stifn), authors (msitf)")
    tr.add_argument("--steps", type=int, default=1000)
    tr.add_argument("--minutes", type=float, default=0.0, help="time budget (0: none); summed over resumes")
    tr.add_argument("--batch", type=int, default=8)
    tr.add_argument("--patch", type=int, default=48, help="input patch side (low resolution for msitf)")
    tr.add_argument("--lr", type=float, default=2e-4)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--max-frames", type=int, default=32, help="frames read per clip")
    tr.add_argument("--val-every", type=int, default=100)
    tr.add_argument("--checkpoint-minutes", type=float, default=2.0)
    tr.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                    help="auto: bf16 where the CPU or GPU computes it natively, else fp32 (fp16 on old GPUs)")
    tr.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: one per core)")
    tr.add_argument("--in-bits", type=int, nargs="+",
                    help="mstfn: significant input bits (default 8); several mix contracts (pretraining)")
    tr.add_argument("--init", help="start a fresh run from these weights (.safetensors or a run's last.pt)")
    tr.add_argument("--qp", type=int, help="stifn: encoder QP (default 37)")
    tr.add_argument("--codec", choices=["x265", "x264"], help="stifn: encoder (default x265)")
    tr.add_argument("--degradation", choices=["bd", "bicubic"], help="msitf: down-sampling (default bd)")
    tr.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    tr.add_argument("--export", type=Path, help="also write the result as .safetensors here")

    ex = sub.add_parser("export", help="write a training checkpoint as .safetensors")
    ex.add_argument("checkpoint", type=Path)
    ex.add_argument("output", type=Path)

    ev = sub.add_parser("evaluate", help="evaluate weights through the public filter, with baselines")
    ev.add_argument("--task", required=True, choices=["mstfn", "stifn", "msitf"])
    ev.add_argument("--model", required=True, help="weights file or shipped model name")
    ev.add_argument("--clips", required=True, nargs="+")
    ev.add_argument("--out", required=True, type=Path)
    ev.add_argument("--max-frames", type=int, default=16)
    ev.add_argument("--in-bits", type=int)
    ev.add_argument("--qp", type=int)
    ev.add_argument("--codec", choices=["x265", "x264"])
    ev.add_argument("--degradation", choices=["bd", "bicubic"])
    ev.add_argument("--tile", type=int)

    args = parser.parse_args(argv)
    if args.command == "encode":
        try:
            frames = encode(sys.stdin.buffer, args.output, codec=args.codec, crf=args.crf, qp=args.qp,
                            preset=args.preset, params=args.params)
        except ValueError as exc:
            print(f"vsrestore encode: {exc}", file=sys.stderr)
            return 1
        print(f"encoded {frames} frames to {args.output}", file=sys.stderr)
        return 0
    options = {k: getattr(args, k, None) for k in ("in_bits", "qp", "codec", "degradation")}
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(options.get("in_bits"), list) and len(options["in_bits"]) == 1:
        options["in_bits"] = options["in_bits"][0]
    if args.command == "train":
        from .training.train import TrainSettings, export, train

        settings = TrainSettings(
            task=args.task, out=args.out, data=args.data, val_data=args.val_data, config=args.config,
            steps=args.steps, minutes=args.minutes, batch=args.batch, patch=args.patch, lr=args.lr,
            seed=args.seed, device=args.device, max_frames=args.max_frames, val_every=args.val_every,
            checkpoint_minutes=args.checkpoint_minutes, precision=args.precision, threads=args.threads,
            init=args.init, task_options=options,
        )
        checkpoint = train(settings, resume=not args.fresh)
        if args.export:
            print(f"exported {export(checkpoint, args.export)}", file=sys.stderr)
        return 0
    if args.command == "export":
        from .training.train import export

        print(f"exported {export(args.checkpoint, args.output)}", file=sys.stderr)
        return 0
    if args.command == "evaluate":
        import logging

        from .evaluation.evaluate import evaluate

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        extra = {"tile": args.tile} if args.tile else {}
        path = evaluate(args.task, args.clips, args.model, args.out, options=options,
                        max_frames=args.max_frames, **extra)
        print(path.read_text())
        return 0
    from . import models

    for name in sorted(models.ARCHS):
        print(f"arch {name}")
    for name, path in sorted(models.shipped_models().items()):
        print(f"model {name}: {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
