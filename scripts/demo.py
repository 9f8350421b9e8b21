"""The main job on the bundled sample: ``vsrestore render`` of ``examples/demo.vpy`` (vsrestore.mstfn
with the shipped model, 6 significant bits to 10-bit) into an x265 encode, then a side-by-side PNG of
the middle frame (left: the source cut to 6 bits, as the model gets it; right: the restored output).
Usage: ./dev demo [output.mkv]
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "demo.vpy"
IN_BITS = 6  # as in examples/demo.vpy


def rgb48(clip, n: int) -> np.ndarray:
    """Frame ``n`` of a YUV or RGB clip as (H, W, 3) 16-bit RGB through VapourSynth's resizer (its
    props' matrix and range; BT.601 for an untagged matrix, as vsrestore assumes for SD)."""
    import vapoursynth as vs

    rgb = vs.core.resize.Spline36(clip, format=vs.RGB48, matrix_in_s="170m", dither_type="none")
    if clip.format.color_family == vs.RGB:
        rgb = vs.core.resize.Point(clip, format=vs.RGB48)
    frame = rgb.get_frame(n)
    return np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1)


def side_by_side(out: Path, png: Path) -> None:
    """Source (cut to ``IN_BITS``) and output, middle frame, each x2 nearest, as a 16-bit PNG."""
    import vapoursynth as vs

    from vsrestore.render.script import run_script
    from vsrestore.training.data import write_image

    source = run_script(SCRIPT, {}).scenes  # examples/demo.vpy sets its source as output 1
    if source is None:
        raise SystemExit(f"{SCRIPT} sets no output 1 (its source)")
    # What the model sees: the source in RGB at its own 8 bits, cut to its top IN_BITS bits.
    keep = 0xFF & ~((1 << (8 - IN_BITS)) - 1)
    rgb = vs.core.resize.Spline36(source, format=vs.RGB24, matrix_in_s="170m")
    banded = vs.core.std.Lut(rgb, function=lambda x: x & keep)
    restored = vs.core.bs.VideoSource(str(out))
    n = restored.num_frames // 2
    panels = [rgb48(banded, n), rgb48(restored, n)]
    image = np.concatenate([p.repeat(2, axis=0).repeat(2, axis=1) for p in panels], axis=1)
    write_image(png, image)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "demo" / "sample_mstfn_10bit.mkv"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    render = subprocess.run([sys.executable, "-m", "vsrestore.cli", "render", str(SCRIPT), str(out), "--codec", "x265",
                             "--crf", "16", "--preset", "fast", "--fresh"])
    if render.returncode != 0:
        print("demo failed: see the messages above", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        print(f"{out}: {frames} frames, {stream.codec_context.name}, {stream.codec_context.pix_fmt}, "
              f"{stream.width}x{stream.height} at {stream.average_rate} fps, rendered in {seconds:.1f} s")
    png = out.with_name(out.stem + "_side_by_side.png")
    side_by_side(out, png)
    print(f"{png}: middle frame, left the source cut to {IN_BITS} bits (the model's input), right the "
          f"10-bit output (16-bit PNG, x2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
