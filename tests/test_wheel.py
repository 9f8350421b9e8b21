"""The package installs from a wheel with its shipped weights, and works outside the checkout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip wheel .`` then the wheel installed (without dependencies: the test environment has them)
    into a target folder that shadows the editable checkout."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((work / "dist").glob("vsrestore-*.whl"))
    target = work / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return target


def run(target: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("VSRESTORE_WEIGHTS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_wheel_carries_the_shipped_models_and_a_filter_renders_with_one(installed, tmp_path):
    out = run(installed, (
        "import vsrestore, vapoursynth as vs\n"
        "from vsrestore.models import shipped\n"
        "print(vsrestore.__file__)\n"
        "names = sorted(e.name for e in shipped.catalogue().values() if e.shipped)\n"
        "print(','.join(names))\n"
        "for e in shipped.catalogue().values(): shipped.verify(e)\n"
        "clip = vs.core.std.BlankClip(format=vs.RGB24, width=32, height=32, length=3, color=[40, 90, 200])\n"
        "f = vsrestore.mstfn(clip, in_bits=6, model='mstfn_6bit', out_depth=16).get_frame(1)\n"
        "print(f.format.name)\n"
    ), cwd=tmp_path)
    where, names, fmt = out.split()
    assert Path(where).is_relative_to(installed)
    assert "mstfn_6bit" in names.split(",")
    assert fmt == "RGB48"
    info = run(installed, "import sys; from vsrestore.cli import main; sys.exit(main(['info']))", cwd=tmp_path)
    assert "mstfn_6bit" in info
