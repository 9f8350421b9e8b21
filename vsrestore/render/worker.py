"""One chunk in its own process: ``python -m vsrestore.render.worker`` with a :class:`ChunkTask` as JSON
on standard input.

The worker runs the whole script (like ``vspipe``), requests only the chunk's output frames
(``vspipe -s START -e END``) and encodes them into the segment file it is given. It reports on its
standard output, one JSON object a line: ``{"frames": k}`` as frames are written, then ``{"done": n}``
or ``{"error": message, "permanent": bool}``. Anything the script prints goes to standard error
(the chunk's log), never into that channel.

Exit status: 0 done, 1 failed (worth retrying), 3 failed for good (the script does not evaluate, the
encoder refuses the format, the plan does not match the output's scenes), 4 orphaned (the process
that started it is gone: a killed render leaves no worker behind).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

EXIT_DONE, EXIT_FAILED, EXIT_PERMANENT, EXIT_ORPHANED = 0, 1, 3, 4


@dataclass
class ChunkTask:
    """Everything a worker needs, on this machine or a Ray node: it travels as JSON."""

    script: str  # absolute path
    script_sha256: str
    args: dict[str, str]
    index: int  # output index
    chunk: int
    start: int
    end: int  # inclusive
    segment: str  # the file to write (a .part name: the driver renames it once verified)
    encoder: dict[str, Any] = field(default_factory=dict)  # EncoderSettings fields
    check_scene_start: bool = False  # the chunk must start a scene where the output has scene props
    threads: int | None = None  # VapourSynth and torch threads (None: their defaults)
    parent: int | None = None  # exit when this process is gone

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChunkTask:
        return cls(**json.loads(text))


class PermanentError(Exception):
    """A failure that a retry cannot fix."""


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment that caps a worker's torch/OpenMP threads (read when torch is first imported)."""
    if not threads:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _watch_parent(parent: int) -> None:
    """Exit at once when the process that started this worker is gone (a killed render): the
    partial segment stays a .part file, which nothing uses."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(EXIT_ORPHANED)


def render_chunk(task: ChunkTask, report: TextIO) -> int:
    """Render and encode ``task``'s frames into ``task.segment``; returns the frame count."""
    import vapoursynth as vs

    from .formats import EncoderSettings, check_encodable, colour_tags, target_format
    from .script import run_script
    from .segment import SegmentWriter

    if task.parent is not None:
        threading.Thread(target=_watch_parent, args=(task.parent,), daemon=True).start()
    os.environ.update(thread_env(task.threads))
    if task.threads:
        vs.core.num_threads = task.threads
    settings = EncoderSettings(**task.encoder)
    try:
        node = run_script(Path(task.script), task.args, index=task.index, scene_index=None).main
        pix_fmt = check_encodable(node.format, settings)
    except ValueError as exc:
        raise PermanentError(str(exc)) from exc
    if not 0 <= task.start <= task.end < node.num_frames:
        raise PermanentError(f"frames {task.start}..{task.end} lie outside the output's {node.num_frames} frames")
    if not node.fps.numerator:
        raise PermanentError("the output has a variable frame rate (fps 0); render needs a constant one")
    target = target_format(node.format, settings)
    if target.id != node.format.id:
        # Dithered down (or up) to the depth asked for; props (colour) pass through the resizer.
        node = vs.core.resize.Point(node, format=target.id, dither_type=settings.dither)
    fps = Fraction(node.fps.numerator, node.fps.denominator)
    writer: SegmentWriter | None = None
    count = 0
    try:
        for frame in node[task.start : task.end + 1].frames(close=True):
            if writer is None:
                # Only _SceneChangePrev can be checked here (the frame before is another chunk's).
                prev = frame.props.get("_SceneChangePrev")
                if task.check_scene_start and task.start > 0 and prev is not None and not int(prev):
                    raise PermanentError(
                        f"output frame {task.start} does not start a scene (its _SceneChangePrev is 0) although "
                        f"the scene cuts put a chunk boundary there: output 1 must be the output's source with the "
                        f"same cuts, or pass --scenes output")
                tags = colour_tags(frame.props, node.format.color_family)
                writer = SegmentWriter(Path(task.segment), width=node.width, height=node.height, pix_fmt=pix_fmt,
                                       fps=fps, settings=settings, tags=tags)
            writer.write(frame)
            count += 1
            print(json.dumps({"frames": count}), file=report, flush=True)
    finally:
        if writer is not None:
            count = writer.close()
    return count


def main() -> int:
    # The report channel is the original stdout; the script's prints go to stderr (the chunk log).
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    task: ChunkTask | None = None
    try:
        task = ChunkTask.from_json(sys.stdin.read())
        count = render_chunk(task, report)
        print(json.dumps({"done": count}), file=report, flush=True)
        return EXIT_DONE
    except PermanentError as exc:
        cause = exc.__cause__.__context__ if exc.__cause__ is not None else None
        if cause is not None:  # the script's own traceback, for the log
            traceback.print_exception(cause)
        message, status = str(exc), EXIT_PERMANENT
    except Exception as exc:  # noqa: BLE001 - any failure is reported, then retried by the driver
        traceback.print_exc()
        message, status = " ".join(str(exc).split()) or type(exc).__name__, EXIT_FAILED
        message = f"{type(exc).__name__}: {message}"
    print(message, file=sys.stderr, flush=True)
    print(json.dumps({"error": message, "permanent": status == EXIT_PERMANENT}), file=report, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
