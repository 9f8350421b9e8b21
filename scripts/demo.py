"""The main job on the bundled sample: ``vspipe`` renders ``examples/demo.vpy`` (vsrestore.mstfn,
6 significant bits to 10-bit) into an x265 encode through ``vsrestore encode``; then the result is
decoded and described. Usage: ./dev demo [output.mkv]
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "demo" / "sample_mstfn_10bit.mkv"
    out.parent.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    start = time.perf_counter()
    render = subprocess.Popen([str(bin_dir / "vspipe"), "-c", "y4m", str(ROOT / "examples" / "demo.vpy"), "-"],
                              stdout=subprocess.PIPE)
    encode = subprocess.run([sys.executable, "-m", "vsrestore.cli", "encode", str(out), "--codec", "x265",
                             "--crf", "16", "--preset", "fast"], stdin=render.stdout)
    render.stdout.close()
    if render.wait() != 0 or encode.returncode != 0:
        print("demo failed: see the messages above", file=sys.stderr)
        return 1
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        print(f"{out}: {frames} frames, {stream.codec_context.name}, {stream.codec_context.pix_fmt}, "
              f"{stream.width}x{stream.height} at {stream.average_rate} fps, "
              f"rendered in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
