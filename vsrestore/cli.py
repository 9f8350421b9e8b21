"""The ``vsrestore`` command line.

``vsrestore encode OUT`` reads Y4M from standard input (e.g. ``vspipe -c y4m script.vpy -``) and
encodes it with PyAV's bundled x265/x264, so a render needs no separate encoder install.
``vsrestore info`` lists the architectures and shipped models.
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
    count = 0
    with av.open(source, format="yuv4mpegpipe") as src, av.open(str(out_path), "w") as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = dst.add_stream(CODECS[codec], rate=rate, options=options)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = vin.codec_context.pix_fmt
        vout.time_base = Fraction(1, 1) / rate
        for frame in src.decode(vin):
            frame.pts = count
            frame.time_base = vout.time_base
            dst.mux(vout.encode(frame))
            count += 1
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
    args = parser.parse_args(argv)
    if args.command == "encode":
        frames = encode(sys.stdin.buffer, args.output, codec=args.codec, crf=args.crf, qp=args.qp,
                        preset=args.preset, params=args.params)
        print(f"encoded {frames} frames to {args.output}", file=sys.stderr)
        return 0
    from . import models

    for name in sorted(models.ARCHS):
        print(f"arch {name}")
    for name, path in sorted(models.shipped_models().items()):
        print(f"model {name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
