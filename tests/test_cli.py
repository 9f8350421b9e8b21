"""The command line: argument checks, one-line errors, --version, info, and encode's Y4M input."""
from __future__ import annotations

import io
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import pytest

import vsrestore
from vsrestore.cli import encode, main as cli, y4m_frame_size

# --------------------------------------------------------------------------------------------------
# arguments

TRAIN = ["train", "--task", "mstfn", "--out", "run", "--data", "clips"]
EVALUATE = ["evaluate", "--task", "mstfn", "--model", "m.safetensors", "--clips", "c", "--out", "o"]


@pytest.mark.parametrize("argv, option, allowed", [
    ([*TRAIN, "--batch", "0"], "--batch", "an integer >= 1"),
    ([*TRAIN, "--batch", "two"], "--batch", "an integer >= 1"),
    ([*TRAIN, "--max-frames", "0"], "--max-frames", "an integer >= 1"),
    ([*TRAIN, "--steps", "-1"], "--steps", "an integer >= 1"),
    ([*TRAIN, "--minutes", "-1"], "--minutes", "a number >= 0"),
    ([*TRAIN, "--minutes", "inf"], "--minutes", "a number >= 0"),
    ([*TRAIN, "--patch", "0"], "--patch", "an integer >= 1"),
    ([*TRAIN, "--lr", "0"], "--lr", "a number > 0"),
    ([*TRAIN, "--lr", "nan"], "--lr", "a number > 0"),
    ([*TRAIN, "--val-every", "0"], "--val-every", "an integer >= 1"),
    ([*TRAIN, "--checkpoint-minutes", "0"], "--checkpoint-minutes", "a number > 0"),
    ([*TRAIN, "--in-bits", "0"], "--in-bits", "an integer in 1..16"),
    ([*TRAIN, "--in-bits", "8", "17"], "--in-bits", "an integer in 1..16"),
    ([*TRAIN, "--threads", "-1"], "--threads", "an integer >= 0"),
    ([*TRAIN, "--seed", "-3"], "--seed", "an integer >= 0"),
    ([*TRAIN, "--precision", "fp8"], "--precision", "invalid choice"),
    ([*TRAIN, "--config", "huge"], "--config", "must be one of tiny, small, authors for --task mstfn"),
    (["train", "--task", "stifn", "--out", "r", "--data", "c", "--config", "small"], "--config", "r3l"),
    (["train", "--task", "stifn", "--out", "r", "--data", "c", "--qp", "99"], "--qp", "an integer in 0..51"),
    ([*TRAIN, "--qp", "30"], "--qp", "applies to --task stifn only"),
    ([*TRAIN, "--degradation", "bd"], "--degradation", "applies to --task msitf only"),
    (["train", "--task", "stifn", "--out", "r", "--data", "c", "--in-bits", "8"], "--in-bits", "--task mstfn only"),
    ([*EVALUATE, "--tile", "8"], "--tile", "an integer >= 16"),
    ([*EVALUATE, "--max-frames", "0"], "--max-frames", "an integer >= 1"),
    ([*EVALUATE, "--in-bits", "17"], "--in-bits", "an integer in 1..16"),
    (["encode", "o.mkv", "--qp", "99"], "--qp", "an integer in 0..69"),
    (["encode", "o.mkv", "--qp", "60"], "--qp", "an integer in 0..51 for --codec x265"),
    (["encode", "o.mkv", "--codec", "x264", "--qp", "70"], "--qp", "an integer in 0..69"),
    (["encode", "o.mkv", "--crf", "52"], "--crf", "an integer in 0..51"),
    (["encode", "o.mkv", "--crf", "-1"], "--crf", "an integer in 0..51"),
    (["encode", "o.mkv", "--crf", "20", "--qp", "20"], "--qp", "not allowed with argument --crf"),
    (["encode", "o.mkv", "--preset", "fastest"], "--preset", "invalid choice"),
    (["encode", "o.mkv", "--codec", "ffv1", "--crf", "10"], "--crf", "applies to --codec x264/x265 only"),
    (["encode", "o.mkv", "--codec", "vp9"], "--codec", "invalid choice"),
    (["train", "--out", "r", "--data", "c"], "--task", "required"),
    (["nonsense"], "command", "invalid choice"),
    ([], "command", "required"),
])
def test_bad_arguments_exit_2_with_one_line_naming_the_option(capsys, argv, option, allowed):
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert option in lines[0] and allowed in lines[0], lines[0]
    assert lines[0].startswith(f"vsrestore {argv[0]}:" if argv and argv[0] != "nonsense" else "vsrestore:")
    assert captured.out == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vsrestore {vsrestore.__version__}"


def test_python_dash_m_vsrestore_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "vsrestore", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"vsrestore {vsrestore.__version__}"


@pytest.mark.parametrize("argv, command", [
    (["train", "--task", "mstfn", "--out", "{tmp}/run", "--data", "{tmp}/missing", "--steps", "1"], "train"),
    (["export", "{tmp}/missing.pt", "{tmp}/out.safetensors"], "export"),
    (["evaluate", "--task", "stifn", "--model", "{tmp}/missing.safetensors", "--clips", "{tmp}/missing",
      "--out", "{tmp}/eval"], "evaluate"),
])
def test_a_failing_command_prints_one_line_and_exits_1(tmp_path, capsys, argv, command):
    assert cli([a.format(tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vsrestore {command}: ") and "missing" in err[0], err


def test_info_lists_versions_architectures_models_and_plugins(capsys):
    import torch

    from vsrestore import models

    assert cli(["info"]) == 0
    out = capsys.readouterr().out
    assert f"vsrestore {vsrestore.__version__}" in out and f"torch {torch.__version__}" in out
    assert "CUDA: " in out and "CPU bf16: " in out
    for name, spec in models.ARCHS.items():
        assert f"  {name} (vsrestore.{name}): presets {', '.join(spec.presets)}" in out
    for name in models.shipped_models():
        line = next(li for li in out.splitlines() if li.startswith(f"  {name}: "))
        assert "arch " in line and "task " in line
    for plugin in ("placebo", "cambi", "deblock", "bs"):
        assert f"  {plugin}: " in out


# --------------------------------------------------------------------------------------------------
# encode


def y4m(frames: int, *, width: int = 32, height: int = 16, tag: str = "420", length: int | None = None,
        partial: int = 0, frame_header: bytes = b"FRAME\n") -> bytes:
    """A Y4M stream of ``frames`` whole frames, then ``partial`` bytes of one more."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C{tag}"
    if length is not None:
        header += f" XLENGTH={length}"
    size = y4m_frame_size(header.encode())
    body = b"".join(frame_header + bytes([16 + 20 * i]) * size for i in range(frames))
    tail = (frame_header + bytes(size))[: partial] if partial else b""
    return header.encode() + b"\n" + body + tail


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_encode_a_whole_stream(tmp_path):
    out = tmp_path / "new" / "folder" / "out.mkv"  # missing folders are created
    assert encode(io.BytesIO(y4m(4)), out, codec="x264", qp=20, preset="ultrafast") == 4
    assert decoded_frames(out) == 4
    path_input = tmp_path / "in.y4m"
    path_input.write_bytes(y4m(3, frame_header=b"FRAME Ixyz\n"))  # frame headers may carry parameters
    assert encode(path_input, tmp_path / "b.mkv", codec="ffv1") == 3


@pytest.mark.parametrize("partial", [1, 3, 6, 100, 6 + 767])
def test_a_stream_cut_inside_a_frame_is_an_error_saying_how_many_arrived(tmp_path, partial):
    out = tmp_path / "out.mkv"
    with pytest.raises(ValueError, match=r"ended early: 2 complete frames arrived and are in .*out\.mkv, then"):
        encode(io.BytesIO(y4m(2, partial=partial)), out, codec="x264", preset="ultrafast")
    assert decoded_frames(out) == 2  # what arrived is kept, playable


def test_a_stream_cut_between_frames_is_caught_by_the_announced_length(tmp_path):
    with pytest.raises(ValueError, match="3 complete frames arrived .* its header announced 5 frames"):
        encode(io.BytesIO(y4m(3, length=5)), tmp_path / "out.mkv", codec="ffv1")
    assert encode(io.BytesIO(y4m(5, length=5)), tmp_path / "whole.mkv", codec="ffv1") == 5


@pytest.mark.parametrize("data, match", [
    (b"", "the input is empty"),
    (y4m(0), "held no frame"),
    (y4m(0, partial=50), "held no frame .*frame 1 stopped after 44 of its 768 bytes"),
    (b"YUV4MPEG2 W32 H16", "not a Y4M stream"),
    (b"\x00\xff" * 500, "not a Y4M stream"),
])
def test_an_input_without_frames_is_an_error_and_leaves_no_file(tmp_path, data, match):
    out = tmp_path / "out.mkv"
    with pytest.raises(ValueError, match=match):
        encode(io.BytesIO(data), out, codec="ffv1")
    assert not out.exists()


def test_an_output_without_a_container_is_refused_before_reading(tmp_path):
    source = io.BytesIO(y4m(2))
    with pytest.raises(ValueError, match="cannot write .*out.nothing"):
        encode(source, tmp_path / "out.nothing")
    assert source.tell() == 0


def test_frame_sizes_match_vspipe(tmp_path):
    vspipe = Path(sys.executable).with_name("vspipe")
    if not vspipe.exists():
        pytest.skip("vspipe not found")
    for fmt in ("YUV420P8", "YUV420P10", "YUV422P10", "YUV444P16", "YUV440P8", "GRAY8", "GRAY16"):
        script = tmp_path / f"{fmt}.vpy"
        script.write_text(f"import vapoursynth as vs\nvs.core.std.BlankClip(format=vs.{fmt}, width=18, height=10, "
                          f"length=3).set_output()\n")
        data = subprocess.run([str(vspipe), "-c", "y4m", str(script), "-"], capture_output=True, check=True,
                              timeout=120).stdout
        header, _, body = data.partition(b"\n")
        assert len(body) == 3 * (6 + y4m_frame_size(header)), (fmt, header)


PRODUCER = textwrap.dedent("""
    import sys, time
    data = open(sys.argv[1], "rb").read()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    open(sys.argv[2], "w").close()  # everything is in the pipe
    time.sleep(300)
""")


def test_a_producer_killed_mid_frame_makes_encode_fail(tmp_path):
    """``producer | vsrestore encode``: the producer is terminated after two and a half frames."""
    stream, ready = tmp_path / "part.y4m", tmp_path / "ready"
    stream.write_bytes(y4m(2, partial=400, length=10))
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, str(stream), str(ready)], stdout=subprocess.PIPE)
    encoder = subprocess.Popen([sys.executable, "-m", "vsrestore", "encode", str(tmp_path / "out.mkv"), "--codec",
                                "x264", "--preset", "ultrafast"], stdin=producer.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    producer.stdout.close()
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert time.monotonic() < deadline and producer.poll() is None
            time.sleep(0.05)
        producer.send_signal(signal.SIGTERM)
        out, err = encoder.communicate(timeout=120)
    finally:
        producer.kill()
        encoder.kill()
        producer.wait()
    assert encoder.returncode == 1 and out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsrestore encode: the Y4M input ended early: 2 complete frames")
    assert decoded_frames(tmp_path / "out.mkv") == 2
