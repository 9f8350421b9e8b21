"""vsrestore render: chunk plans, encoders and colour, lossless concatenation, and end-to-end renders
(real vspipe, PyAV and worker processes; tiny networks) that must equal a single vspipe render."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import vapoursynth as vs

from vsrestore import cli
from vsrestore.render import EncoderSettings, RenderOptions, render
from vsrestore.render.concat import concat_segments
from vsrestore.render.formats import check_encodable, colour_tags
from vsrestore.render.job import _accept_segment
from vsrestore.render.manifest import ChunkRecord
from vsrestore.render.plan import make_chunks
from vsrestore.render.pool import Event
from vsrestore.render.scenes import map_to_output, read_scene_starts
from vsrestore.render.segment import SegmentWriter, count_frames

core = vs.core
BIN = Path(sys.executable).parent

# Two scripts with a tiny network each and scene cuts inside the clip; output 1 is the source.
# `cuts` are the first frames of scenes; `expose=0` sets no output 1; `delay` slows every frame.
SOURCE = '''
import time
from fractions import Fraction

import torch
import vapoursynth as vs

import vsrestore
from vsrestore.evaluation.vsclips import scene_cut_clip

core = vs.core
length = int(globals().get("length", "{length}"))
cuts = [int(c) for c in globals().get("cuts", "{cuts}").split(",") if c]
delay = float(globals().get("delay", "0"))
colour = {{"_Matrix": 6, "_Transfer": 6, "_Primaries": 6, "_Range": 0, "_ChromaLocation": 2}}


def slow(n, f):
    time.sleep(delay)
    return f.copy()


src = vsrestore.scene_changes(scene_cut_clip(length, cuts, {width}, {height}, Fraction({fpsnum}, 1001), colour))
'''

MSTFN = SOURCE.format(length=12, cuts="5,9", width=64, height=48, fpsnum=30000) + '''
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig

torch.manual_seed(1)
net = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1))
with torch.no_grad():
    for p in net.parameters():
        p.mul_(3.0)  # a visible residual: a wrong window would change the output
out = vsrestore.mstfn(src, in_bits=6, out_depth=int(globals().get("depth", "10")), model=net.eval())
if delay:
    out = core.std.ModifyFrame(out, out, slow)
out.set_output()
if globals().get("expose", "1") == "1":
    src.set_output(1)
'''

MSITF = SOURCE.format(length=10, cuts="4,7", width=16, height=16, fpsnum=24000) + '''
import torch.nn.functional as F


class Blender(torch.nn.Module):
    """Stand-in for MSITF: 7 outputs from 4 inputs, x4 bilinear; midpoints blend their neighbours."""

    def forward(self, x):
        frames = []
        for p in range(2 * x.shape[1] - 1):
            k, mid = divmod(p, 2)
            f = x[:, k] if not mid else (x[:, k] + x[:, k + 1]) / 2
            frames.append(F.interpolate(f, scale_factor=4, mode="bilinear", align_corners=False))
        return torch.stack(frames, 1)


vsrestore.msitf(src, model=Blender()).set_output()
if globals().get("expose", "1") == "1":
    src.set_output(1)
'''

# name -> (script, output frames, rate, output frames that start a scene)
CASES = {
    "mstfn": (MSTFN, 12, Fraction(30000, 1001), [5, 9]),
    "msitf": (MSITF, 19, Fraction(48000, 1001), [8, 14]),  # 2N-1 frames at twice the rate; cut s -> 2s
}


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scripts")
    paths = {}
    for name, (text, *_) in CASES.items():
        paths[name] = folder / f"{name}.vpy"
        paths[name].write_text(text)
    return paths


def av_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """A decoded frame's planes as arrays without row padding (packed bgr0 as one (H, W, 4) array)."""
    name = frame.format.name
    dtype = np.float32 if "f32" in name else (np.uint16 if name[-2:] == "le" else np.uint8)
    out = []
    for p in frame.planes:
        rows = np.frombuffer(p, dtype=dtype).reshape(p.height, -1)
        out.append(rows[:, : 4 * p.width].reshape(p.height, p.width, 4) if name == "bgr0" else rows[:, : p.width])
    return [a.copy() for a in out]


def decode(source, **kwargs) -> list[list[np.ndarray]]:
    with av.open(source, **kwargs) as container:
        return [av_planes(f) for f in container.decode(video=0)]


_REFERENCES: dict[tuple[str, tuple[str, ...]], list[list[np.ndarray]]] = {}


def vspipe_frames(script: Path, *args: str) -> list[list[np.ndarray]]:
    """One ``vspipe -c y4m`` render of the whole script, decoded (cached per script and arguments)."""
    key = (str(script), args)
    if key not in _REFERENCES:
        cmd = [str(BIN / "vspipe"), "-c", "y4m", *(x for a in args for x in ("-a", a)), str(script), "-"]
        y4m = subprocess.run(cmd, capture_output=True, check=True, timeout=300).stdout
        _REFERENCES[key] = decode(io.BytesIO(y4m), format="yuv4mpegpipe")
    return _REFERENCES[key]


def assert_same_frames(got: list[list[np.ndarray]], want: list[list[np.ndarray]]) -> None:
    assert len(got) == len(want)
    for n, (a, b) in enumerate(zip(got, want)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), f"frame {n} differs"


def check_stream(path: Path, frames: int, rate: Fraction) -> av.video.stream.VideoStream:
    """Frame count, continuous timestamps (frame k at k/rate, on Matroska's millisecond clock), the
    rate and the colour description of ``path``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(f.pts for f in container.decode(stream))
        cc = stream.codec_context
        assert len(pts) == frames
        assert pts == [int(k / rate * 1000 + Fraction(1, 2)) for k in range(frames)]
        # Matroska stores the rate as a frame duration in whole ns, which FFmpeg reads back as a
        # fraction with terms up to 30000: exact for 30000/1001, 7001/146 for 48000/1001 (1.4e-7 off).
        assert stream.average_rate == rate or abs(stream.average_rate / rate - 1) < 1e-6
        assert (cc.colorspace, cc.color_trc, cc.color_primaries) == (6, 6, 6)
        assert (cc.color_range, cc.chroma_sample_location) == (1, 3)  # limited; top-left (_ChromaLocation 2)
        return stream


# --------------------------------------------------------------------------------------------------
# plans, formats, colour, segments


def test_chunks_split_only_at_scene_starts_and_hold_min_frames():
    spans = lambda chunks: [(c.start, c.end) for c in chunks]  # noqa: E731
    assert spans(make_chunks(12, [5, 9], 3)) == [(0, 4), (5, 8), (9, 11)]
    assert spans(make_chunks(12, [5, 9], 5)) == [(0, 4), (5, 11)]  # 9..11 is short: joins the chunk before
    assert spans(make_chunks(12, [2, 5, 9], 4)) == [(0, 4), (5, 11)]  # 0..1 is short: merged forward
    assert spans(make_chunks(100, [], 10)) == [(0, 99)]  # a scene is never split
    assert spans(make_chunks(3, [1, 2], 50)) == [(0, 2)]
    assert [c.index for c in make_chunks(12, [5, 9], 1)] == [0, 1, 2]
    with pytest.raises(ValueError):
        make_chunks(0, [], 1)


def test_source_cuts_map_to_output_frames_by_time():
    src = core.std.BlankClip(length=10, fpsnum=24000, fpsden=1001)
    same = core.std.BlankClip(length=10, fpsnum=24000, fpsden=1001)
    doubled = core.std.BlankClip(length=19, fpsnum=48000, fpsden=1001)  # msitf "2n-1"
    doubled_2n = core.std.BlankClip(length=20, fpsnum=48000, fpsden=1001)  # msitf "2n"
    assert map_to_output([4, 7], src, same) == [4, 7]
    assert map_to_output([4, 7], src, doubled) == [8, 14]
    assert map_to_output([4, 7], src, doubled_2n) == [8, 14]
    trimmed = core.std.BlankClip(length=12, fpsnum=48000, fpsden=1001)
    with pytest.raises(ValueError, match="does not span the same time"):
        map_to_output([4], src, trimmed)


def test_scene_starts_from_either_prop_or_the_detector():
    from standins import index_clip

    prev = index_clip(8, cuts={2, 5}, flag="prev")
    assert read_scene_starts(prev, detect=False, threshold=0.1)[:3:2] == ([3, 6], True)
    nxt = index_clip(8, cuts={2, 5}, flag="next")
    assert read_scene_starts(nxt, detect=False, threshold=0.1)[:3:2] == ([3, 6], False)  # nothing to check
    jumps = core.std.BlankClip(format=vs.GRAY8, length=3, color=[20]) + core.std.BlankClip(
        format=vs.GRAY8, length=4, color=[200]) + core.std.BlankClip(format=vs.GRAY8, length=2, color=[90])
    assert read_scene_starts(jumps, detect=False, threshold=0.1)[:3:2] == ([3, 7], False)  # no props: detector
    assert read_scene_starts(prev, detect=True, threshold=0.1)[0] == []  # values 0..7 of 65535: no cut


def test_colour_description_from_frame_props():
    tags = colour_tags({"_Matrix": 9, "_Transfer": 16, "_Primaries": 9, "_Range": 1, "_ChromaLocation": 2}, vs.YUV)
    assert tags.as_dict() == {"colorspace": 9, "color_trc": 16, "color_primaries": 9, "color_range": 2,
                              "chroma_location": 3}
    assert colour_tags({"_ColorRange": 1}, vs.YUV).color_range == 1  # legacy prop: 1 is limited
    assert colour_tags({"_Matrix": 1}, vs.RGB).colorspace == 0  # RGB is GBR whatever the prop says
    assert colour_tags({}, vs.YUV).as_dict() == {"colorspace": 2, "color_trc": 2, "color_primaries": 2,
                                                 "color_range": 0, "chroma_location": 0}


def test_depths_an_encoder_cannot_take_are_refused_naming_what_it_takes():
    fmt16 = core.get_video_format(vs.YUV420P16)
    with pytest.raises(ValueError, match=r"x265 takes YUV 4:2:0 at 8, 10 or 12 bits, not YUV 4:2:0 16-bit.*--depth 12"):
        check_encodable(fmt16, EncoderSettings("x265"))
    assert check_encodable(fmt16, EncoderSettings("x265", depth=12)) == "yuv420p12le"
    assert check_encodable(fmt16, EncoderSettings("ffv1")) == "yuv420p16le"
    with pytest.raises(ValueError, match="x264 cannot take RGB"):
        check_encodable(core.get_video_format(vs.RGB24), EncoderSettings("x264"))
    with pytest.raises(ValueError, match="x264 takes YUV 4:2:0 at 8 or 10 bits, not YUV 4:2:0 12-bit"):
        check_encodable(core.get_video_format(vs.YUV420P12), EncoderSettings("x264"))
    with pytest.raises(ValueError, match="ffv1 takes RGB at 8, 9, 10, 12, 14 or 16 bits, not RGB float"):
        check_encodable(core.get_video_format(vs.RGBS), EncoderSettings("ffv1"))
    assert check_encodable(core.get_video_format(vs.RGBS), EncoderSettings("ffv1", depth=16)) == "gbrp16le"


def noise_clip(fmt: int, length: int, width: int = 40, height: int = 24, seed: int = 0) -> vs.VideoNode:
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length, fpsnum=30000, fpsden=1001)
    peak = 1.0 if blank.format.sample_type == vs.FLOAT else (1 << blank.format.bits_per_sample) - 1

    def fill(n, f):
        out = f.copy()
        rng = np.random.default_rng(seed + n)
        for p in range(out.format.num_planes):
            a = np.asarray(out[p])
            a[:] = rng.random(a.shape) if peak == 1.0 else rng.integers(0, peak + 1, a.shape)
        out.props["_Matrix"], out.props["_Range"] = (0 if out.format.color_family == vs.RGB else 1), 1
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def write_segment(clip: vs.VideoNode, path: Path, settings: EncoderSettings) -> int:
    pix_fmt = check_encodable(clip.format, settings)
    writer = SegmentWriter(path, width=clip.width, height=clip.height, pix_fmt=pix_fmt,
                           fps=Fraction(clip.fps.numerator, clip.fps.denominator), settings=settings,
                           tags=colour_tags(clip.get_frame(0).props, clip.format.color_family))
    for frame in clip.frames():
        writer.write(frame)
    return writer.close()


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10, vs.YUV444P16, vs.GRAY8, vs.RGB24, vs.RGB30, vs.RGB48])
def test_ffv1_segments_are_lossless(tmp_path, fmt):
    clip = noise_clip(fmt, 3)
    path = tmp_path / "seg.mkv"
    assert write_segment(clip, path, EncoderSettings("ffv1")) == 3
    assert count_frames(path) == 3
    for frame, planes in zip(clip.frames(), decode(str(path))):
        vs_planes = [np.asarray(frame[p]) for p in range(frame.format.num_planes)]
        if fmt == vs.RGB24:  # FFV1 takes 8-bit RGB packed as B, G, R, 0
            (packed,) = planes
            planes = [packed[:, :, 2], packed[:, :, 1], packed[:, :, 0]]
        elif frame.format.color_family == vs.RGB:  # planar G, B, R
            planes = [planes[2], planes[0], planes[1]]
        assert all(np.array_equal(a, b) for a, b in zip(planes, vs_planes))


def test_concatenation_is_a_lossless_remux_with_continuous_timestamps(tmp_path):
    # x265 reorders frames (B-frames): decode stamps must still rise across the joins.
    settings = EncoderSettings("x265", preset="ultrafast", qp=30)
    clips = [noise_clip(vs.YUV420P10, 7, 64, 48), noise_clip(vs.YUV420P10, 5, 64, 48, seed=7)]
    segments = [tmp_path / "a.mkv", tmp_path / "b.mkv"]
    for clip, path in zip(clips, segments):
        write_segment(clip, path, settings)
    out = tmp_path / "out.mkv"
    assert concat_segments(segments, out, Fraction(30000, 1001), [7, 5]) == 12
    assert_same_frames(decode(str(out)), decode(str(segments[0])) + decode(str(segments[1])))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == Fraction(30000, 1001)
        assert sorted(f.pts for f in container.decode(stream)) == [round(k * 1001 / 30) for k in range(12)]


def test_a_short_or_damaged_segment_is_never_accepted(tmp_path):
    write_segment(noise_clip(vs.YUV420P8, 4), tmp_path / "whole.mkv", EncoderSettings("ffv1"))
    data = (tmp_path / "whole.mkv").read_bytes()
    chunk = ChunkRecord(index=3, start=10, end=14)  # 5 frames expected, 4 in the file
    problem = _accept_segment(chunk, Event("done", 3, frames=5, data=data), tmp_path)
    assert "decodes to 4 frames" in problem and chunk.state == "pending"
    assert not list(tmp_path.glob("seg-*"))
    chunk = ChunkRecord(index=3, start=10, end=13)
    assert _accept_segment(chunk, Event("done", 3, frames=4, data=data[: len(data) // 2]), tmp_path) is not None
    assert chunk.state == "pending" and not list(tmp_path.glob("seg-*"))
    assert _accept_segment(chunk, Event("done", 3, frames=4, data=data), tmp_path) is None
    assert chunk.state == "done" and (tmp_path / "seg-00003.mkv").stat().st_size == chunk.bytes


# --------------------------------------------------------------------------------------------------
# whole renders against one vspipe render


def options(script: Path, out: Path, **kwargs) -> RenderOptions:
    defaults = {"encoder": EncoderSettings("ffv1"), "min_chunk": 3, "keep": True}
    return RenderOptions(script=script, output=out, **{**defaults, **kwargs})


def chunk_starts(work: Path) -> list[int]:
    return [c["start"] for c in json.loads((work / "manifest.json").read_text())["chunks"]]


@pytest.mark.parametrize("name", ["mstfn", "msitf"])
def test_render_on_one_and_two_workers_equals_vspipe(scripts, tmp_path, name, capfd):
    _, frames, rate, starts = CASES[name]
    want = vspipe_frames(scripts[name])
    # 1 worker, 2 chunks: mstfn finds its cuts with the detector on output 1, msitf (no output 1) on
    # the output's own props; 2 workers, 3 chunks: from output 1's props.
    one = {"mstfn": {"detect": True, "min_chunk": 5}, "msitf": {"args": {"expose": "0"}, "min_chunk": 8}}[name]
    for workers, extra, chunks in ((1, one, [0, starts[0]]), (2, {}, [0, *starts])):
        out = tmp_path / f"{workers}.mkv"
        result = render(options(scripts[name], out, workers=workers, **extra))
        assert (result.frames, result.fps, result.chunks) == (frames, rate, len(chunks))
        assert chunk_starts(result.work_dir) == chunks
        check_stream(out, frames, rate)
        assert_same_frames(decode(str(out)), want)
    assert capfd.readouterr().out == ""  # the library prints nothing on stdout


def test_x265_render_converts_depth_and_carries_colour_in_the_bitstream(scripts, tmp_path):
    out = tmp_path / "x265.mkv"
    cmd = [sys.executable, "-m", "vsrestore.cli", "render", str(scripts["mstfn"]), str(out), "-a", "depth=16",
           "--min-chunk", "3", "--preset", "ultrafast", "--crf", "20"]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and not out.exists()
    assert refused.stderr.strip().splitlines()[-1] == (
        "vsrestore render: x265 takes YUV 4:2:0 at 8, 10 or 12 bits, not YUV 4:2:0 16-bit (the output is "
        "YUV420P16); pass --depth 12 to convert with dithering")
    done = subprocess.run([*cmd, "--depth", "12"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    stream = check_stream(out, 12, Fraction(30000, 1001))
    assert stream.codec_context.pix_fmt == "yuv420p12le"
    # Without the container: the raw HEVC stream's VUI alone describes the colour.
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        bsf = av.bitstream.BitStreamFilterContext("hevc_mp4toannexb", stream)
        raw = b"".join(bytes(q) for p in container.demux(stream) for q in bsf.filter(p))
    with av.open(io.BytesIO(raw), format="hevc") as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_trc, frame.color_primaries, frame.color_range) == (6, 6, 6, 1)
        assert frame.chroma_location == 3


def test_a_killed_worker_is_retried_and_the_output_is_identical(scripts, tmp_path):
    out = tmp_path / "out.mkv"
    killed: list[int] = []

    def kill_chunk_1(pool) -> None:
        def run() -> None:
            part = tmp_path / "out.mkv.parts" / "seg-00001.part.mkv"
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                pid = pool.worker_pids().get(1)
                if pid is not None and part.exists():  # created with the chunk's first frame
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.02)

        threading.Thread(target=run, daemon=True).start()

    result = render(options(scripts["mstfn"], out, workers=2, args={"delay": "0.3"}), on_pool=kill_chunk_1)
    assert killed and result.retries == 1
    tries = [c["tries"] for c in json.loads((result.work_dir / "manifest.json").read_text())["chunks"]]
    assert tries == [1, 2, 1]
    assert_same_frames(decode(str(out)), vspipe_frames(scripts["mstfn"]))  # the delay copies frames unchanged
    assert not list(result.work_dir.glob("*.part.mkv"))


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_resume_after_killing_the_whole_run_redoes_only_unfinished_chunks(scripts, tmp_path):
    out = tmp_path / "out.mkv"
    work = tmp_path / "out.mkv.parts"
    cmd = [sys.executable, "-m", "vsrestore.cli", "render", str(scripts["mstfn"]), str(out), "--codec", "ffv1",
           "--min-chunk", "3", "--workers", "1", "--keep", "-a", "delay=0.3"]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            manifest = work / "manifest.json"
            states = [c["state"] for c in json.loads(manifest.read_text())["chunks"]] if manifest.exists() else []
            if states[:1] == ["done"] and (work / "seg-00001.part.mkv").exists():
                workers = _children(run.pid)
                os.kill(run.pid, signal.SIGKILL)  # the whole render, mid-way through chunk 1
                break
            time.sleep(0.02)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGKILL and workers
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the killed render"
    assert not out.exists()
    first = work / "seg-00000.mkv"
    before = first.stat().st_mtime_ns

    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming: 1 of 3 chunks done" in again.stderr
    manifest = json.loads((work / "manifest.json").read_text())
    assert [c["tries"] for c in manifest["chunks"]] == [1, 2, 1]
    assert first.stat().st_mtime_ns == before  # the finished chunk was not rendered again
    assert_same_frames(decode(str(out)), vspipe_frames(scripts["mstfn"]))  # the delay copies frames unchanged


def test_ray_local_with_two_workers_equals_vspipe(scripts, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # mstfn's segments come back through the object store; msitf's tasks write them into the
        # work directory (--ray-shared; on one machine every task sees it).
        for name, shared in (("mstfn", False), ("msitf", True)):
            _, frames, rate, starts = CASES[name]
            out = tmp_path / f"{name}.mkv"
            result = render(options(scripts[name], out, ray="local", workers=2, threads=1, ray_shared=shared))
            assert (result.frames, result.chunks) == (frames, 3)
            assert chunk_starts(result.work_dir) == [0, *starts]
            check_stream(out, frames, rate)
            assert_same_frames(decode(str(out)), vspipe_frames(scripts[name]))
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------------------------------
# command line


def test_ray_without_ray_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    status = cli.main(["render", str(tmp_path / "any.vpy"), str(tmp_path / "out.mkv"), "--ray"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == "vsrestore render: --ray needs the optional package ray: pip install 'vsrestore[ray]' (or pip " \
                  "install 'ray>=2.9')\n"


@pytest.mark.parametrize("argv, option", [
    (["-a", "1x=2"], "-a/--arg"),
    (["--workers", "0"], "--workers"),
    (["--threshold", "1"], "--threshold"),
    (["--depth", "17"], "--depth"),
    (["--min-chunk", "x"], "--min-chunk"),
    (["--ray-shared"], "--ray-shared"),
    (["--ray", "--ray-runtime-env", "[1]"], "--ray-runtime-env"),
    (["--codec", "ffv1", "--crf", "3"], "--crf"),
    (["--codec", "x265", "--qp", "60"], "--qp"),
    (["--resume", "--fresh"], "--fresh"),
])
def test_bad_render_arguments_exit_2_with_one_line(capsys, argv, option):
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "s.vpy", "out.mkv", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("vsrestore render: ") and option in err


def test_output_must_be_matroska(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "s.vpy", "out.mp4"])
    assert exc.value.code == 2 and "argument output: must be a Matroska file" in capsys.readouterr().err
