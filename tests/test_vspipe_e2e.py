"""End to end: a .vpy rendered by vspipe, piped into an x265 encode, decoded back."""
from __future__ import annotations

import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from vsrestore import models
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig

SCRIPT = """
import vapoursynth as vs
import vsrestore
core = vs.core
clip = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=7, fpsnum=24000, fpsden=1001,
                          color=[90, 120, 140])
clip = core.std.SetFrameProps(clip, _Matrix=1, _Range=0)
clip = vsrestore.scene_changes(clip)
vsrestore.mstfn(clip, model=model.decode() if isinstance(model, bytes) else model, out_depth=10,
                num_streams=2).set_output()
"""


def vspipe() -> str:
    exe = Path(sys.executable).with_name("vspipe")
    return str(exe) if exe.exists() else (shutil.which("vspipe") or pytest.skip("vspipe not found"))


def test_vspipe_into_x265_gives_every_frame_at_10_bits(tmp_path):
    weights = models.save(MSTFN(MSTFNConfig(features=4, num_rpb=0, num_tail=1)), tmp_path / "tiny.safetensors")
    script = tmp_path / "render.vpy"
    script.write_text(SCRIPT)
    out = tmp_path / "out.mkv"
    render = subprocess.Popen(
        [vspipe(), "-c", "y4m", "-a", f"model={weights}", str(script), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    encode = subprocess.run(
        [sys.executable, "-m", "vsrestore.cli", "encode", str(out), "--codec", "x265", "--qp", "20", "--preset", "ultrafast"],
        stdin=render.stdout, capture_output=True, timeout=300,
    )
    render.stdout.close()
    assert render.wait(timeout=60) == 0, render.stderr.read().decode()
    assert encode.returncode == 0, encode.stderr.decode()
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        frames = list(container.decode(stream))
        rate = stream.average_rate
    assert len(frames) == 7
    assert frames[0].format.name == "yuv420p10le"
    assert (frames[0].width, frames[0].height) == (64, 48)
    assert rate == Fraction(24000, 1001)
