"""The ``vsrestore`` command line.

- ``vsrestore encode OUT``: Y4M from standard input (e.g. ``vspipe -c y4m script.vpy -``) encoded with
  PyAV's bundled x265/x264, so a render needs no separate encoder install;
- ``vsrestore render SCRIPT.vpy OUT.mkv``: a script's output to x265/x264/FFV1 with its colour
  description, in chunks split at scene cuts on local worker processes or Ray, resumable;
- ``vsrestore train``: train a network (``--task mstfn|stifn|msitf``), resumable;
- ``vsrestore export``: a training checkpoint to ``.safetensors`` with metadata;
- ``vsrestore export-onnx``: networks as ONNX in vs-mlrt's layout (frames stacked on channels);
- ``vsrestore evaluate``: run a filter with given weights on clips against baselines;
- ``vsrestore info``: versions, CUDA and CPU bf16 support, architectures and their presets, shipped
  models with their contracts, optional VapourSynth plugins;
- ``vsrestore --version``.

Errors are one line on stderr, ``vsrestore <command>: <message>``: exit status 2 for bad arguments,
1 when the work fails (a missing data path, an unreadable model, a Y4M input that ends early).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

CODECS = {"x265": "libx265", "x264": "libx264", "ffv1": "ffv1"}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
# rate-control ranges of the bundled encoders (8-bit): x264 takes QP up to 69, x265 up to 51
CRF_RANGE = {"x265": (0, 51), "x264": (0, 51)}
QP_RANGE = {"x265": (0, 51), "x264": (0, 69)}
TASKS = ("mstfn", "stifn", "msitf")
# task options and the task each belongs to, for the checks after parsing
TASK_OPTIONS = {"in_bits": "mstfn", "letterbox": "mstfn", "qp": "stifn", "codec": "stifn", "degradation": "msitf"}
# optional VapourSynth plugins (namespaces of vs.core) and what vsrestore uses them for
PLUGINS = {
    "bs": "BestSource: the source filter of the examples and the demo",
    "placebo": "placebo.Deband: the debanding baseline of vsrestore evaluate (mstfn)",
    "cambi": "CAMBI banding metric in vsrestore evaluate (mstfn)",
    "deblock": "deblock.Deblock: the deblocking baseline of vsrestore evaluate (stifn)",
}


class CommandError(Exception):
    """A usage error found after parsing: the CLI prints it as one line and exits with 2."""


# --------------------------------------------------------------------------------------------------
# Y4M input


_Y4M_SUBSAMPLING = {"420": (2, 2), "422": (2, 1), "444": (1, 1), "411": (4, 1), "410": (4, 2), "440": (1, 2)}


def y4m_frame_size(header: bytes) -> int | None:
    """Bytes of one frame's samples in a Y4M stream with this header line, or None when the header
    is not one this function knows (PyAV then decides alone).

    Handles the colour tags vspipe and ffmpeg write: ``C420``/``420jpeg``/``420mpeg2``/``420paldv``,
    ``422``, ``444``, ``444alpha``, ``411``, ``410``, ``440``, ``mono``, each with an optional depth
    (``420p10``, ``mono16``); no ``C`` tag means 4:2:0 8-bit. Samples above 8 bits take 2 bytes.
    """
    fields = header.split()
    if not fields or fields[0] != b"YUV4MPEG2":
        return None
    tags = {f[:1]: f[1:].decode("ascii", "replace") for f in fields[1:] if f}
    try:
        width, height = int(tags[b"W"]), int(tags[b"H"])
    except (KeyError, ValueError):
        return None
    m = re.fullmatch(r"(mono|\d{3})(jpeg|mpeg2|paldv|alpha)?(?:p?(\d{1,2}))?", tags.get(b"C", "420jpeg"))
    if m is None or width <= 0 or height <= 0:
        return None
    family, variant, depth = m.groups()
    sample = 1 if int(depth or 8) <= 8 else 2
    luma = width * height
    if family == "mono":
        return luma * sample
    if family not in _Y4M_SUBSAMPLING:
        return None
    sw, sh = _Y4M_SUBSAMPLING[family]
    chroma = -(-width // sw) * -(-height // sh)
    return (luma * (2 if variant == "alpha" else 1) + 2 * chroma) * sample


class Y4MReader:
    """A read-only file object over a Y4M stream that follows the stream's structure as it passes.

    PyAV's Y4M demuxer drops a last frame that stops short (a producer killed mid-frame) without an
    error, so the encoder cannot tell a truncated render from a finished one. This wrapper counts the
    frames that arrived whole, from the header's frame size, and says at the end whether the stream
    stopped inside a frame; vspipe also announces the frame count (``XLENGTH=N``), which catches a
    producer killed between two frames. It exposes no ``seek``, so PyAV reads it as a pipe.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0
        self.head = b""  # the stream's first bytes, for error messages
        self.frames = 0  # frames whose header and samples arrived whole
        self.frame_size: int | None = None  # from the stream header
        self.announced: int | None = None  # XLENGTH=N in the stream header (vspipe)
        self.lost: str | None = None  # set when the stream stops following the format we know
        self._state = "stream header"  # or "frame header", "samples"
        self._line = bytearray()
        self._left = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if len(self.head) < 32:
            self.head += data[: 32 - len(self.head)]
        self.bytes_read += len(data)
        if self.lost is None and data:
            self._follow(data)
        return data

    def _follow(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._state == "samples":
                take = min(self._left, n - i)
                self._left -= take
                i += take
                if self._left == 0:
                    self.frames += 1
                    self._state = "frame header"
                continue
            end = data.find(b"\n", i)
            self._line += data[i : n if end < 0 else end]
            if len(self._line) > 4096:
                self.lost = f"a {self._state} line longer than 4096 bytes"
                return
            if end < 0:
                return
            i = end + 1
            line = bytes(self._line)
            self._line.clear()
            if self._state == "stream header":
                self.frame_size = y4m_frame_size(line)
                if self.frame_size is None:
                    self.lost = f"an unknown stream header {line[:80]!r}"
                    return
                for field in line.split():
                    if field.startswith(b"XLENGTH=") and field[8:].isdigit():
                        self.announced = int(field[8:])
                self._state = "frame header"
            elif line.startswith(b"FRAME"):
                self._left = self.frame_size or 0
                self._state = "samples"
            else:
                self.lost = f"frame {self.frames + 1} not starting with FRAME"
                return

    def incomplete(self) -> str | None:
        """At the end of the stream: what is missing (a partial last frame, frames vspipe announced
        but never sent), or None when the stream is whole as far as it can tell."""
        if self.lost is not None:
            return None
        if self._state == "samples":
            got = (self.frame_size or 0) - self._left
            return f"frame {self.frames + 1} stopped after {got} of its {self.frame_size} bytes"
        if self._line:
            return f"the stream stopped inside the header of frame {self.frames + 1}"
        if self.announced is not None and self.frames < self.announced:
            return f"the stream ended although its header announced {self.announced} frames"
        return None


def encode(source: str | os.PathLike[str] | BinaryIO, out_path: Path, *, codec: str = "x265",
           crf: int | None = None, qp: int | None = None, preset: str | None = None, params: str = "") -> int:
    """Encode a Y4M stream (path or binary file object) to ``out_path``; returns the frame count.

    ``out_path``'s folder is created when missing. A stream that ends early (a partial last frame,
    fewer frames than vspipe announced, a producer killed) is a ValueError saying how many frames
    arrived; the file then holds those frames. An input without any frame is a ValueError too, and
    leaves no file.
    """
    import av

    options: dict[str, str] = {}
    if codec in ("x265", "x264"):
        options["preset"] = preset or "medium"
        if qp is not None:
            options["qp"] = str(qp)
        elif crf is not None:
            options["crf"] = str(crf)
        if codec == "x265":
            options["x265-params"] = ":".join(filter(None, ["log-level=error", params]))
        elif params:
            options["x264-params"] = params
    from tqdm import tqdm

    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {out_path.parent}: {exc.strerror or exc}") from None
    owned = open(source, "rb") if isinstance(source, (str, os.PathLike)) else None
    reader = Y4MReader(owned or source)  # type: ignore[arg-type]
    count = 0
    failure: str | None = None
    try:
        # The output is opened first: a name without a known container fails before stdin is read.
        try:
            dst = av.open(str(out_path), "w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise ValueError(f"cannot write {out_path}: {exc} (use a .mkv, .mp4 or .mov name)") from None
        try:
            try:
                src = av.open(reader, format="yuv4mpegpipe")
            except av.error.FFmpegError as exc:
                if reader.bytes_read == 0:
                    raise ValueError("the input is empty: no Y4M stream arrived (did the script render? "
                                     "use vspipe -c y4m script.vpy - | vsrestore encode OUT)") from None
                raise ValueError(f"the input is not a Y4M stream (it starts with {reader.head!r}, not a whole "
                                 f"'YUV4MPEG2 W.. H.. F..' header line); did the script render?") from None
            # The bar goes to stderr and only when it is a terminal: stdout may be a pipe.
            progress = tqdm(desc=f"encoding {out_path.name}", unit="frame", disable=None, leave=False)
            with progress, src:
                vin = src.streams.video[0]
                rate = vin.average_rate or Fraction(25)
                vout = dst.add_stream(CODECS[codec], rate=rate, options=options)
                vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
                vout.pix_fmt = vin.codec_context.pix_fmt
                # Frames are stamped in the encoder's own time base: stamping them in the stream's makes
                # libx265 reorder B-frames on wrong timestamps (the muxer then rejects the packets).
                time_base = vout.codec_context.time_base or 1 / rate
                frames = src.decode(vin)
                while True:
                    try:
                        frame = next(frames)
                    except StopIteration:
                        break
                    except av.error.FFmpegError as exc:  # a damaged frame: keep what came before it
                        failure = f"the input could not be read after frame {count} ({exc})"
                        break
                    frame.time_base = time_base
                    frame.pts = round(count / (rate * time_base))
                    try:
                        dst.mux(vout.encode(frame))
                    except av.error.FFmpegError as exc:
                        raise ValueError(f"the {codec} encoder refused its settings or the input "
                                         f"({vout.pix_fmt} {vout.width}x{vout.height}): {exc}") from None
                    count += 1
                    progress.update()
                if count:
                    dst.mux(vout.encode(None))
        finally:
            dst.close()
    except BaseException:
        if count == 0:
            out_path.unlink(missing_ok=True)
        raise
    finally:
        if owned is not None:
            owned.close()
    if count == 0:
        out_path.unlink(missing_ok=True)
        detail = reader.incomplete() or failure
        raise ValueError(f"the Y4M input held no frame (0 frames arrived{'; ' + detail if detail else ''}); "
                         f"did the script render?")
    problem = reader.incomplete() or failure
    if problem is None and reader.lost is None and reader.frames != count:
        problem = f"{reader.frames} frames arrived but {count} were decoded"
    if problem is not None:
        raise ValueError(f"the Y4M input ended early: {count} complete frames arrived and are in {out_path}, "
                         f"then {problem} (was the render interrupted or did the script fail?)")
    return count


# --------------------------------------------------------------------------------------------------
# argument checks: argparse types that name what is allowed


def _bounded(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False) -> Any:
    """An argparse ``type=``: ``kind`` (int or float) at least ``low`` (more than it when ``above``)
    and at most ``high``; the error says what is allowed."""
    noun = "an integer" if kind is int else "a number"
    if low is not None and high is not None:
        allowed = f"{noun} in {low}..{high}"
    elif low is not None:
        allowed = f"{noun} {'>' if above else '>='} {low}"
    else:
        allowed = noun

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or (kind is float and not math.isfinite(value))
            or (low is not None and (value <= low if above else value < low))
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}")
        return value

    parse.__name__ = allowed  # argparse shows a type's name in some messages
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``vsrestore train: argument --batch: must be ...``) and exit
    status 2, without the usage block: the message names the option and what it allows."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``vsrestore`` parser and its subcommand parsers by name."""
    from . import __version__

    parser = _Parser(prog="vsrestore", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vsrestore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    enc = sub.add_parser("encode", help="encode Y4M from stdin (vspipe -c y4m ... -) with x265/x264")
    enc.add_argument("output", type=Path, help="output file (.mkv, .mp4, .mov); a missing folder is created")
    enc.add_argument("--codec", choices=sorted(CODECS), default="x265")
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--crf", type=_bounded(int, 0, 51), help="x264/x265 constant rate factor, 0..51")
    rate.add_argument("--qp", type=_bounded(int, 0, 69), help="x264/x265 constant QP: 0..51 (x265), 0..69 (x264)")
    enc.add_argument("--preset", choices=PRESETS, help="x264/x265 preset (default medium)")
    enc.add_argument("--params", default="", help="extra x265-params/x264-params, key=value:key=value")
    sub.add_parser("info", help="versions, architectures, shipped models and optional plugins")

    positive, count = _bounded(int, 1), _bounded(int, 0)
    tr = sub.add_parser("train", help="train a network; rerunning with the same --out resumes")
    tr.add_argument("--task", required=True, choices=TASKS)
    tr.add_argument("--out", required=True, help="run folder (checkpoint last.pt, train.log)")
    tr.add_argument("--data", required=True, nargs="+", help="training clips: folders, videos, raw .yuv")
    tr.add_argument("--val-data", nargs="*", default=[], help="validation clips (default: the training clips)")
    tr.add_argument("--config", default="tiny",
                    help="preset of the task's architecture (vsrestore info lists them), e.g. tiny, small, r3, lite")
    tr.add_argument("--steps", type=positive, default=1000)
    tr.add_argument("--minutes", type=_bounded(float, 0), default=0.0, help="time budget (0: none); summed over resumes")
    tr.add_argument("--batch", type=positive, default=8)
    tr.add_argument("--patch", type=positive, default=48, help="input patch side (low resolution for msitf)")
    tr.add_argument("--lr", type=_bounded(float, 0, above=True), default=2e-4)
    tr.add_argument("--seed", type=count, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--max-frames", type=positive, default=32, help="frames read per clip")
    tr.add_argument("--shrink-videos", type=positive, default=1,
                    help="area-average the training videos by this factor (default 1), e.g. 2 to hide a lossy "
                         "source's own coding artifacts from the ground truth; stills are panned at half size anyway")
    tr.add_argument("--pan-motion", choices=["rigid", "video"], default="rigid",
                    help="how training stills move: rigid pans (default), or like video: a non-rigid sway, an "
                         "object crossing on its own path and sensor noise")
    tr.add_argument("--strides", type=positive, nargs="+", default=[1],
                    help="temporal strides each training video is read at (default 1), e.g. 1 2: the same "
                         "material with twice the motion, coded anew")
    tr.add_argument("--pan-frames", type=positive, default=None,
                    help="pan each training still in clips of this many frames, as many as fill --max-frames, each "
                         "on its own path (default: one pan of --max-frames frames, slower the longer it is)")
    tr.add_argument("--video-segments", type=positive, default=1,
                    help="read each training video on past --max-frames, as up to this many clips of --max-frames "
                         "frames each (default 1: its first --max-frames only)")
    tr.add_argument("--val-every", type=positive, default=100)
    tr.add_argument("--checkpoint-minutes", type=_bounded(float, 0, above=True), default=2.0)
    tr.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                    help="auto: bf16 where the CPU or GPU computes it natively, else fp32 (fp16 on old GPUs)")
    tr.add_argument("--threads", type=count, default=0, help="torch threads on the CPU (0: one per core)")
    tr.add_argument("--in-bits", type=_bounded(int, 1, 16), nargs="+",
                    help="mstfn: significant input bits, 1..16 (default 8); several mix contracts (pretraining)")
    tr.add_argument("--letterbox", type=_bounded(float, 0, 1),
                    help="mstfn: chance that a patch gets a black bar along one edge (default 0)")
    tr.add_argument("--init", help="start a fresh run from these weights (.safetensors or a run's last.pt)")
    tr.add_argument("--ema", type=_bounded(float, 0, 0.9999), default=0.999,
                    help="decay of the weight average that validation and export use (0: last weights)")
    tr.add_argument("--loss", choices=["charbonnier", "mse"], default="charbonnier",
                    help="charbonnier (a smooth L1, the median) or mse (the mean, which PSNR scores)")
    tr.add_argument("--adam-eps", type=_bounded(float, 0, above=True), default=1e-8,
                    help="Adam's epsilon (default 1e-8); smaller lets the tiny gradients of deep layers move them")
    tr.add_argument("--qp", type=_bounded(int, 0, 51), help="stifn: encoder QP, 0..51 (default 37)")
    tr.add_argument("--codec", choices=["x265", "x264"], help="stifn: encoder (default x265)")
    tr.add_argument("--degradation", choices=["bd", "bicubic"], help="msitf: down-sampling (default bd)")
    tr.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    tr.add_argument("--export", type=Path, help="also write the result as .safetensors here")

    ex = sub.add_parser("export", help="write a training checkpoint as .safetensors")
    ex.add_argument("checkpoint", type=Path)
    ex.add_argument("output", type=Path)
    eo = sub.add_parser("export-onnx", help="write networks as ONNX in vs-mlrt's layout (frames stacked on channels)")
    eo.add_argument("models", nargs="*", metavar="MODEL",
                    help="shipped model names or checkpoint files (default: every shipped MSTFN and STIFN model)")
    eo.add_argument("--out", required=True, type=Path,
                    help="output .onnx file (one MODEL) or folder (each model as NAME.onnx)")
    eo.add_argument("--opset", type=_bounded(int, 13, 21), default=17, help="ONNX opset, 13..21 (default 17)")

    ev = sub.add_parser("evaluate", help="evaluate weights through the public filter, with baselines")
    ev.add_argument("--task", required=True, choices=TASKS)
    ev.add_argument("--model", required=True, help="weights file or shipped model name")
    ev.add_argument("--clips", required=True, nargs="+")
    ev.add_argument("--out", required=True, type=Path)
    ev.add_argument("--max-frames", type=positive, default=16)
    ev.add_argument("--in-bits", type=_bounded(int, 1, 16), help="mstfn: significant input bits, 1..16")
    ev.add_argument("--qp", type=_bounded(int, 0, 51), help="stifn: encoder QP, 0..51")
    ev.add_argument("--codec", choices=["x265", "x264"])
    ev.add_argument("--degradation", choices=["bd", "bicubic"])
    ev.add_argument("--tile", type=_bounded(int, 16), help="tile size in pixels, >= 16")
    ev.add_argument("--precision", nargs="+", choices=["auto", "fp32", "bf16", "fp16"], default=[],
                    help="run the filter at each of these precisions, a row each (default: its own, auto)")
    _add_render_parser(sub, positive, count)
    return parser, dict(sub.choices)


def _script_arg(text: str) -> tuple[str, str]:
    """An argparse ``type=`` for ``--arg key=value`` (vspipe's ``-a``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must be key=value with a Python identifier as key; got {text!r}")
    return key, value


def _mkv_path(text: str) -> Path:
    """An argparse ``type=`` for render's output: a Matroska file (segments are remuxed into one)."""
    if not text.lower().endswith(".mkv"):
        raise argparse.ArgumentTypeError(f"must be a Matroska file name ending in .mkv; got {text!r}")
    return Path(text)


def _json_object(text: str) -> dict[str, Any]:
    """An argparse ``type=`` for a JSON object given inline or as the path of a .json file."""
    import json

    source = Path(text).read_text() if text.endswith(".json") and Path(text).is_file() else text
    try:
        value = json.loads(source)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object or a .json file holding one; got {text!r}")
    return value


def _open_unit(text: str) -> float:
    """An argparse ``type=``: a number in (0, 1), both ends excluded (the detector's threshold)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}")
    return value


def _add_render_parser(sub: Any, positive: Any, count: Any) -> None:
    from .render.choices import CODEC_NAMES, DITHERS, SCENE_SOURCES

    re_ = sub.add_parser("render", help="render a script's output to x265/x264/FFV1 in chunks on local workers or Ray")
    re_.add_argument("script", type=Path, help="the .vpy script")
    re_.add_argument("output", type=_mkv_path, help="output file (.mkv); a missing folder is created")
    re_.add_argument("-a", "--arg", dest="script_args", type=_script_arg, action="append", default=[],
                     metavar="KEY=VALUE", help="a global for the script, as vspipe -a (repeatable)")
    re_.add_argument("-o", "--index", type=count, default=0, help="output index to render (default 0)")
    re_.add_argument("--codec", choices=CODEC_NAMES, default="x265", help="x265, x264 or ffv1 (lossless)")
    rate = re_.add_mutually_exclusive_group()
    rate.add_argument("--crf", type=_bounded(int, 0, 51), help="x264/x265 constant rate factor, 0..51")
    rate.add_argument("--qp", type=_bounded(int, 0, 69), help="x264/x265 constant QP: 0..51 (x265), 0..69 (x264)")
    re_.add_argument("--preset", choices=PRESETS, help="x264/x265 preset (default medium)")
    re_.add_argument("--params", default="", help="extra x265-params/x264-params, key=value:key=value")
    re_.add_argument("--depth", type=_bounded(int, 8, 16),
                     help="convert the output to this integer bit depth first, with dithering (8..16)")
    re_.add_argument("--dither", choices=DITHERS, default="error_diffusion", help="dither of --depth")
    re_.add_argument("--workers", type=positive, help="chunks rendered at once (local default: one per 2 cores)")
    re_.add_argument("--threads", type=positive,
                     help="VapourSynth/torch threads per worker (default: cores / workers; 2 with --ray)")
    re_.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run chunks as Ray tasks: alone, a local Ray instance; 'auto' or a cluster address "
                          "(give --ray after the script and output, or as --ray=ADDRESS)")
    re_.add_argument("--ray-runtime-env", type=_json_object, metavar="JSON",
                     help="Ray runtime_env for the tasks (a JSON object, or a .json file)")
    re_.add_argument("--ray-shared", action="store_true",
                     help="the work directory is on storage every Ray node mounts at the same path")
    re_.add_argument("--scenes", choices=SCENE_SOURCES, default="auto",
                     help="where chunk boundaries come from: output 1 (source), the output, auto, none")
    re_.add_argument("--detect", action="store_true", help="ignore scene props and run the scene detector")
    re_.add_argument("--threshold", type=_open_unit, default=0.1,
                     help="vsrestore.scene_changes threshold for the detector, in (0, 1) (default 0.1)")
    re_.add_argument("--min-chunk", type=positive, default=50, help="output frames per chunk at least (default 50)")
    re_.add_argument("--max-tries", type=positive, default=3, help="attempts per chunk (default 3)")
    again = re_.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the render in the work directory")
    again.add_argument("--fresh", action="store_true", help="discard the work directory's render and start over")
    re_.add_argument("--keep", action="store_true", help="keep segments, logs and the manifest")
    re_.add_argument("--work-dir", type=Path, help="segments, logs and the manifest (default OUTPUT.mkv.parts)")


def check_combinations(args: argparse.Namespace) -> None:
    """Checks that span options (argparse sees one option at a time); a CommandError names them."""
    if args.command == "render":
        if args.ray is None:
            given = [f"--{n}" for n in ("ray_runtime_env", "ray_shared") if getattr(args, n)]
            if given:
                raise CommandError(f"argument {given[0].replace('_', '-')}: applies with --ray only")
    if args.command in ("encode", "render"):
        if args.codec == "ffv1":
            given = [f"--{name}" for name in ("crf", "qp", "preset") if getattr(args, name) is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise CommandError(f"{', '.join(given)} {verb} to --codec x264/x265 only; ffv1 is lossless")
            return
        for name, ranges in (("crf", CRF_RANGE), ("qp", QP_RANGE)):
            value, (low, high) = getattr(args, name), ranges[args.codec]
            if value is not None and not low <= value <= high:
                raise CommandError(f"argument --{name}: must be an integer in {low}..{high} for --codec "
                                   f"{args.codec}; got {value}")
    if args.command == "train":
        from .models import ARCHS  # each task trains the architecture of its name

        presets = list(ARCHS[args.task].presets)
        if args.config not in presets:
            raise CommandError(f"argument --config: must be one of {', '.join(presets)} for --task {args.task}; "
                               f"got {args.config!r}")
    if args.command in ("train", "evaluate"):
        for name, task in TASK_OPTIONS.items():
            if getattr(args, name, None) is not None and args.task != task:
                raise CommandError(f"argument --{name.replace('_', '-')}: applies to --task {task} only, "
                                   f"not {args.task}")


def task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The degradation options of ``train``/``evaluate`` that were given."""
    options = {k: getattr(args, k, None) for k in TASK_OPTIONS}
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(options.get("in_bits"), list) and len(options["in_bits"]) == 1:
        options["in_bits"] = options["in_bits"][0]
    return options


# --------------------------------------------------------------------------------------------------
# subcommands


def run_encode(args: argparse.Namespace) -> int:
    frames = encode(sys.stdin.buffer, args.output, codec=args.codec, crf=args.crf, qp=args.qp,
                    preset=args.preset, params=args.params)
    print(f"encoded {frames} frames to {args.output}", file=sys.stderr)
    return 0


def run_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .render import EncoderSettings, RenderOptions, render

    settings = EncoderSettings(codec=args.codec, crf=args.crf, qp=args.qp, preset=args.preset, params=args.params,
                               depth=args.depth, dither=args.dither)
    options = RenderOptions(
        script=args.script, output=args.output, args=dict(args.script_args), encoder=settings, index=args.index,
        workers=args.workers, threads=args.threads, ray=args.ray, ray_runtime_env=args.ray_runtime_env,
        ray_shared=args.ray_shared, scenes=args.scenes, detect=args.detect, threshold=args.threshold,
        min_chunk=args.min_chunk, max_tries=args.max_tries, resume=args.resume, fresh=args.fresh, keep=args.keep,
        work_dir=args.work_dir,
    )
    # tqdm.write keeps these lines clear of the progress bar; all on stderr.
    render(options, log=lambda line: tqdm.write(line, file=sys.stderr))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .training.train import TrainSettings, export, train

    settings = TrainSettings(
        task=args.task, out=args.out, data=args.data, val_data=args.val_data, config=args.config,
        steps=args.steps, minutes=args.minutes, batch=args.batch, patch=args.patch, lr=args.lr,
        seed=args.seed, device=args.device, max_frames=args.max_frames, shrink_videos=args.shrink_videos,
        pan_motion=args.pan_motion, strides=args.strides, pan_frames=args.pan_frames,
        video_segments=args.video_segments, val_every=args.val_every,
        checkpoint_minutes=args.checkpoint_minutes, precision=args.precision, threads=args.threads,
        init=args.init, ema=args.ema, loss=args.loss, adam_eps=args.adam_eps, task_options=task_options(args),
    )
    checkpoint = train(settings, resume=not args.fresh)
    if args.export:
        print(f"exported {export(checkpoint, args.export)}", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from .training.train import export

    print(f"exported {export(args.checkpoint, args.output)}", file=sys.stderr)
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    from .backends.onnx_export import EXPORTABLE, export_onnx
    from .models import shipped_models
    from .models.shipped import find

    names: list[str] = list(args.models) or [e.name for arch in EXPORTABLE for e in find(arch)]
    if not names:
        raise ValueError("no shipped MSTFN or STIFN model to export; name a model or checkpoint file")
    single = len(names) == 1 and args.out.suffix.lower() == ".onnx"
    if not single and args.out.suffix.lower() == ".onnx":
        raise ValueError(f"--out {args.out} is one file, but {len(names)} models are exported: give a folder")
    shipped = shipped_models()
    for name in names:
        stem = name if name in shipped else Path(name).stem
        done = export_onnx(name, args.out if single else args.out / f"{stem}.onnx", opset=args.opset)
        print(f"exported {done.path}: {done.description}", file=sys.stderr)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import logging

    from .evaluation.evaluate import evaluate

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = {"tile": args.tile} if args.tile else {}
    path = evaluate(args.task, args.clips, args.model, args.out, options=task_options(args),
                    max_frames=args.max_frames, precisions=args.precision, **extra)
    print(path.read_text())
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Versions, hardware, architectures, shipped models with their contracts, optional plugins."""
    import torch

    from . import __version__, models
    from .models.device import cpu_has_bf16

    print(f"vsrestore {__version__}")
    print(f"torch {torch.__version__}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        print(f"CUDA: available ({names})")
    else:
        print("CUDA: not available (filters and training run on the CPU)")
    print(f"CPU bf16: {'native (AMX-BF16 or AVX512-BF16)' if cpu_has_bf16() else 'emulated (training uses fp32)'}")
    try:
        import vapoursynth as vs

        namespaces = {p.namespace for p in vs.core.plugins()}
        print(f"VapourSynth {vs.__version__}")
    except Exception as exc:  # noqa: BLE001 - info reports what it can
        namespaces = set()
        print(f"VapourSynth: not usable ({_one_line(exc)})")
    print("optional VapourSynth plugins:")
    for name, use in PLUGINS.items():
        print(f"  {name}: {'installed' if name in namespaces else 'missing'} ({use})")
    print("architectures:")
    for name in sorted(models.ARCHS):
        presets = ", ".join(models.ARCHS[name].presets) or "none"
        print(f"  {name} (vsrestore.{name}): presets {presets}")
    shipped = models.shipped_models()
    print("shipped models:" if shipped else "shipped models: none")
    for name, path in sorted(shipped.items()):
        try:
            meta = models.read_checkpoint(path)[1]
        except ValueError as exc:
            print(f"  {name}: unreadable ({_one_line(exc)}) {path}")
            continue
        contract = [f"arch {meta.get('arch', '?')}", f"task {meta.get('task', '?')}"]
        contract += [f"{key} {meta[key]}" for key in ("in_bits", "out_bits", "qp") if key in meta]
        training = meta.get("training")
        if isinstance(training, dict) and "config" in training:
            contract.append(f"config {training['config']}")
        print(f"  {name}: {', '.join(contract)} ({path})")
    return 0


COMMANDS = {"encode": run_encode, "render": run_render, "train": run_train, "export": run_export, "evaluate": run_evaluate,
            "info": run_info}
COMMANDS["export-onnx"] = run_export_onnx


def _one_line(exc: BaseException) -> str:
    """An error message as one line (library messages may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 failed, 2 bad arguments).

    Failures print one line on stderr, ``vsrestore <command>: <message>``, never a traceback: bad
    arguments and bad combinations exit with 2, a failure of the work itself (a missing data path,
    an unreadable model, a truncated input) with 1. Standard output stays free for results.
    """
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    prog = f"vsrestore {args.command}"
    try:
        check_combinations(args)
    except CommandError as exc:
        subparsers[args.command].error(str(exc))
    errors: tuple[type[BaseException], ...] = (ValueError, OSError)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        vs_error = getattr(sys.modules.get("vapoursynth"), "Error", None)
        if not isinstance(exc, errors) and not (vs_error is not None and isinstance(exc, vs_error)):
            raise  # a bug: the traceback is what a report needs
        print(f"{prog}: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
