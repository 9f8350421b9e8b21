"""The README's main job: the bundled sample through vspipe, vsrestore.mstfn and x265."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest
import vapoursynth as vs

from vsrestore import models

ROOT = Path(__file__).resolve().parents[1]


def test_demo_renders_every_frame_at_10_bits(tmp_path):
    if not hasattr(vs.core, "bs"):
        pytest.skip("BestSource (the tools extra) is not installed")
    assert "mstfn_6bit" in models.shipped_models()
    out = tmp_path / "demo.mkv"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), str(out)], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "60 frames, hevc, yuv420p10le, 176x144 at 30000/1001 fps" in run.stdout
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 60
