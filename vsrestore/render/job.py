"""``render``: a script's output to an encode, in chunks split at scene cuts, on local workers or Ray.

The driver (this module) runs the script once to learn the output (evaluating it renders nothing),
plans chunks from the scene cuts, keeps the manifest, hands chunks to a pool, verifies and renames
each segment, retries failed chunks and concatenates the segments at the end.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import vapoursynth as vs

from .formats import EncoderSettings, check_encodable
from .manifest import MANIFEST, ChunkRecord, Manifest, WorkDirLock, job_difference
from .plan import make_chunks
from .pool import Event, Pool
from .choices import SceneSource
from .scenes import find_cuts
from .script import run_script, script_digest
from .segment import count_frames
from .worker import ChunkTask


@dataclass
class RenderOptions:
    """Everything ``vsrestore render`` takes (the command line maps one to one onto these fields)."""

    script: Path
    output: Path
    args: Mapping[str, str] = field(default_factory=dict)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    index: int = 0  # the output index rendered
    workers: int | None = None  # local: one per two cores; Ray: cluster CPUs // threads
    threads: int | None = None  # per worker; local default cores // workers, Ray default 2
    ray: str | None = None  # None (local), "local", "auto" or a cluster address
    ray_runtime_env: dict[str, Any] | None = None
    ray_shared: bool = False  # Ray tasks write segments into the (shared) work directory
    scenes: SceneSource = "auto"
    detect: bool = False  # ignore scene props, run the detector
    threshold: float = 0.1  # vsrestore.scene_changes threshold for the detector
    min_chunk: int = 50  # output frames per chunk at least (chunks split only at scene starts)
    max_tries: int = 3  # attempts per chunk in one run
    resume: bool = False
    fresh: bool = False
    keep: bool = False
    work_dir: Path | None = None


@dataclass(frozen=True)
class RenderResult:
    """What a render made: the file, its frames and rate, how it was split and what was redone."""

    output: Path
    frames: int
    fps: Fraction
    chunks: int
    rendered_chunks: int  # chunks rendered by this run (the rest were done before a --resume)
    retries: int  # failed tries that were retried
    seconds: float
    work_dir: Path


def default_work_dir(output: Path) -> Path:
    """``OUTPUT.mkv.parts`` beside the output: segments, logs and the manifest of a render."""
    return output.with_name(output.name + ".parts")


def _our_files(folder: Path) -> list[Path]:
    patterns = ("seg-*.mkv", "seg-*.part.mkv", "chunk-*.log", MANIFEST, MANIFEST + ".tmp")
    return [p for pattern in patterns for p in folder.glob(pattern)]


class _Bar:
    """tqdm on stderr (off when stderr is not a terminal) that can also step back when a try fails."""

    def __init__(self, total: int | None, initial: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="frame", disable=None, file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)

    def add(self, n: int) -> None:
        if n:
            self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def render(options: RenderOptions, *, log: Callable[[str], None] | None = None,
           on_pool: Callable[[Pool], None] | None = None) -> RenderResult:
    """Render ``options.script``'s output into ``options.output`` (Matroska).

    ``log`` gets a few lines about the plan, retries and the result (the command line prints them
    on stderr; the library prints nothing). ``on_pool`` is called with the pool once it runs
    (tests use it to kill a worker). Failures are ValueErrors; done chunks stay in the work
    directory's manifest, so ``resume=True`` continues a failed, interrupted or killed render.
    """
    say = log or (lambda line: None)
    started = time.perf_counter()
    opts = options
    if opts.ray is not None:
        from .ray_backend import import_ray

        import_ray()  # say what to install before anything is rendered
    output = Path(opts.output)
    if output.suffix.lower() != ".mkv":
        raise ValueError(f"the output must be a Matroska file (.mkv); got {output.name}")
    script = Path(opts.script).resolve()
    outputs = run_script(script, opts.args, index=opts.index)
    main = outputs.main
    if not main.fps.numerator:
        raise ValueError("the output has a variable frame rate (fps 0); render needs a constant one")
    fps = Fraction(main.fps.numerator, main.fps.denominator)
    check_encodable(main.format, opts.encoder)
    work = Path(opts.work_dir) if opts.work_dir else default_work_dir(output)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the work directory {work}: {exc.strerror or exc}") from None
    job = {
        "script": str(script), "script_sha256": script_digest(script), "args": dict(opts.args),
        "index": opts.index, "frames": main.num_frames, "fps": str(fps), "format": main.format.name,
        "width": main.width, "height": main.height, "encoder": asdict(opts.encoder),
    }
    with WorkDirLock(work):
        manifest = _open_manifest(work, job, opts, say)
        if manifest is None:
            if opts.scenes == "output" or (opts.scenes == "auto" and outputs.scenes is None):
                say("finding scene cuts on the output itself renders it once more before the chunks; a script "
                    "that sets its source (with scene props) as output 1 avoids that")
            bar = _Bar(None, 0, "finding scene cuts")
            try:
                cuts = find_cuts(main, outputs.scenes, opts.scenes, detect=opts.detect, threshold=opts.threshold,
                                 progress=bar.add)
            finally:
                bar.close()
            chunks = make_chunks(main.num_frames, cuts.starts, opts.min_chunk)
            manifest = Manifest(job=job, chunks=[ChunkRecord(c.index, c.start, c.end) for c in chunks],
                                cuts=cuts.how, extra={"check_scene_start": cuts.from_props})
            manifest.save(work)
            say(f"{main.num_frames} frames, {len(cuts.starts)} scene cuts (from {cuts.how}), "
                f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''} of at least {opts.min_chunk} frames")
        del outputs, main
        vs.clear_outputs()  # the driver keeps no graph (nor model) alive while the workers render
        rendered, retries = _run_chunks(manifest, work, script, opts, say, on_pool)
        segments = [work / c.segment for c in manifest.chunks]
        _check_segments(manifest, work)
        from .concat import concat_segments, count_packets

        tmp = output.with_name(f".{output.name}.partial.mkv")
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            frames = concat_segments(segments, tmp, fps, [c.frames for c in manifest.chunks])
            if count_packets(tmp) != job["frames"]:
                raise ValueError(f"the concatenated file holds {count_packets(tmp)} frames, expected {job['frames']}")
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
        if not opts.keep:
            for path in _our_files(work):
                path.unlink(missing_ok=True)
    if not opts.keep:
        (work / "lock").unlink(missing_ok=True)
        try:
            work.rmdir()
        except OSError:
            pass  # files that are not ours stay
    seconds = time.perf_counter() - started
    n = len(manifest.chunks)
    say(f"wrote {output}: {frames} frames at {fps} fps ({n} chunk{'s' if n != 1 else ''}, {rendered} rendered by "
        f"this run, {retries} retried) in {seconds:.1f} s")
    return RenderResult(output, frames, fps, len(manifest.chunks), rendered, retries, seconds, work)


def _open_manifest(work: Path, job: dict[str, Any], opts: RenderOptions, say: Callable[[str], None]) -> Manifest | None:
    """The manifest to continue (``resume``), or None to plan afresh; refuses to discard work silently."""
    old = Manifest.load(work) if not opts.fresh else None
    if old is not None and opts.resume:
        diff = job_difference(old.job, job)
        if diff is not None:
            raise ValueError(f"the work directory {work} holds another render ({diff}); pass --fresh to start "
                             f"over or choose another --work-dir")
        done = sum(c.state == "done" for c in old.chunks)
        say(f"resuming: {done} of {len(old.chunks)} chunks done, scene cuts from {old.cuts}")
        return old
    if old is not None:
        done = sum(c.state == "done" for c in old.chunks)
        raise ValueError(f"the work directory {work} holds a render from before ({done} of {len(old.chunks)} chunks "
                         f"done); pass --resume to continue it or --fresh to start over")
    if opts.resume:
        say(f"nothing to resume in {work}: starting afresh")
    for path in _our_files(work):
        path.unlink(missing_ok=True)
    return None


def _check_segments(manifest: Manifest, work: Path) -> None:
    """Every chunk done, with its segment present at the size recorded when it was verified."""
    for c in manifest.chunks:
        path = work / c.segment if c.segment else None
        if c.state != "done" or path is None or not path.is_file() or path.stat().st_size != c.bytes:
            raise ValueError(f"chunk {c.index} (frames {c.start}..{c.end}) has no verified segment; "
                             f"rerun with --resume")


def _task(c: ChunkRecord, manifest: Manifest, work: Path, script: Path, opts: RenderOptions, threads: int) -> ChunkTask:
    job = manifest.job
    return ChunkTask(
        script=str(script), script_sha256=job["script_sha256"], args=dict(job["args"]), index=job["index"],
        chunk=c.index, start=c.start, end=c.end, segment=str((work / f"seg-{c.index:05d}.part.mkv").resolve()),
        encoder=dict(job["encoder"]), check_scene_start=bool(manifest.extra.get("check_scene_start")),
        threads=threads,
    )


def _make_pool(opts: RenderOptions, work: Path, script: Path, pending: int) -> tuple[Pool, int]:
    if opts.ray is not None:
        from .ray_backend import RayPool

        threads = opts.threads or 2
        pool: Pool = RayPool(opts.ray, workers=opts.workers, threads=threads, script=script,
                             runtime_env=opts.ray_runtime_env, shared=opts.ray_shared)
        return pool, threads
    from .local import LocalPool, default_workers

    workers = min(opts.workers or default_workers(), max(pending, 1))
    threads = opts.threads or max(1, (os.cpu_count() or 1) // workers)
    return LocalPool(workers, work), threads


def _run_chunks(manifest: Manifest, work: Path, script: Path, opts: RenderOptions, say: Callable[[str], None],
                on_pool: Callable[[Pool], None] | None) -> tuple[int, int]:
    """Render every chunk not done (a done chunk whose segment changed is redone); returns
    (chunks rendered, failed tries retried)."""
    for c in manifest.chunks:
        path = work / c.segment if c.segment else None
        if c.state == "done" and (path is None or not path.is_file() or path.stat().st_size != c.bytes):
            say(f"chunk {c.index}: its segment is missing or changed, rendering it again")
            c.state, c.segment, c.bytes = "pending", "", 0
    for stale in work.glob("seg-*.part.mkv"):
        stale.unlink()  # partial segments of a killed run are never used
    pending = [c for c in manifest.chunks if c.state != "done"]
    if not pending:
        return 0, 0
    manifest.save(work)
    pool, threads = _make_pool(opts, work, script, len(pending))
    say(f"rendering {len(pending)} chunk{'s' if len(pending) != 1 else ''} with {pool.name}, {threads} "
        f"thread{'s' if threads != 1 else ''} each")
    records = {c.index: c for c in manifest.chunks}
    queue_ = list(pending)
    running: dict[int, int] = {}  # chunk -> frames of its current try shown on the bar
    tries: dict[int, int] = {}
    retries = 0
    bar = _Bar(sum(c.frames for c in manifest.chunks), manifest.done_frames, f"rendering {Path(opts.output).name}")
    try:
        if on_pool is not None:
            on_pool(pool)
        while queue_ or running:
            started = False
            while queue_ and len(running) < pool.slots:
                c = queue_.pop(0)
                c.tries += 1
                tries[c.index] = tries.get(c.index, 0) + 1
                running[c.index] = 0
                pool.submit(_task(c, manifest, work, script, opts, threads))
                started = True
            if started:
                manifest.save(work)  # the attempt is on record even if this run is killed now
            event: Event = pool.events.get()
            if event.chunk not in running:
                continue  # a late progress report of a try that already ended
            c = records[event.chunk]
            if event.kind == "progress":
                bar.add(event.frames - running[c.index])
                running[c.index] = event.frames
                continue
            shown = running.pop(c.index)
            problem = event.message
            if event.kind == "done":
                problem = _accept_segment(c, event, work)
                if problem is None:
                    bar.add(c.frames - shown)
                    manifest.save(work)
                    continue
            bar.add(-shown)
            where = f"chunk {c.index} (frames {c.start}..{c.end})"
            if event.permanent or tries[c.index] >= opts.max_tries:
                manifest.save(work)
                attempts = "" if event.permanent else f" after {tries[c.index]} tries"
                raise ValueError(f"{where} failed{attempts}: {problem}; done chunks are kept in {work} "
                                 f"(rerun with --resume)")
            retries += 1
            say(f"{where} failed ({problem}); trying again (try {tries[c.index] + 1} of {opts.max_tries})")
            queue_.insert(0, c)
            manifest.save(work)
    finally:
        bar.close()
        pool.close()
    return len(pending), retries


def _accept_segment(c: ChunkRecord, event: Event, work: Path) -> str | None:
    """Verify a finished segment (it decodes to the chunk's frame count), rename it from .part and mark
    the chunk done; returns what is wrong instead when it is not acceptable."""
    part = work / f"seg-{c.index:05d}.part.mkv"
    final = work / f"seg-{c.index:05d}.mkv"
    if event.data is not None:  # came back through Ray's object store
        part.write_bytes(event.data)
    if not part.is_file():
        return f"the worker reported success but wrote no segment ({part.name})"
    try:
        decoded = count_frames(part)
    except ValueError as exc:
        part.unlink(missing_ok=True)
        return str(exc)
    if decoded != c.frames or event.frames != c.frames:
        part.unlink(missing_ok=True)
        return f"the segment decodes to {decoded} frames (the worker wrote {event.frames}), expected {c.frames}"
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())  # on disk before the manifest says so
    os.replace(part, final)
    c.state, c.segment, c.bytes = "done", final.name, final.stat().st_size
    return None
