"""Synthetic clips and stand-in networks for testing the bridge without real weights."""
from __future__ import annotations

from collections.abc import Collection

import numpy as np
import vapoursynth as vs

core = vs.core


def index_clip(
    length: int,
    *,
    cuts: Collection[int] = (),
    fmt: int = vs.GRAY16,
    width: int = 16,
    height: int = 16,
    fpsnum: int = 24000,
    fpsden: int = 1001,
    flag: str = "next",
) -> vs.VideoNode:
    """Frame n is filled with the value n and carries marker props.

    ``cuts`` holds the last frame of each scene; ``flag`` says which side marks it ("next":
    ``_SceneChangeNext`` on that frame, "prev": ``_SceneChangePrev`` on the following one).
    """
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length, fpsnum=fpsnum, fpsden=fpsden)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(out.format.num_planes):
            np.asarray(out[p]).fill(n)
        out.props["SourceIndex"] = n
        out.props["_Matrix"] = 1
        out.props["_Range"] = 0
        out.props["_ChromaLocation"] = 0
        out.props["_Transfer"] = 1
        out.props["_Primaries"] = 1
        if flag == "next":
            out.props["_SceneChangeNext"] = int(n in cuts)
        else:
            out.props["_SceneChangePrev"] = int(n - 1 in cuts)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def frame_value(frame: vs.VideoFrame, plane: int = 0) -> int:
    """The value a frame of :func:`index_clip` (or a stand-in output) was filled with."""
    return int(np.asarray(frame[plane])[0, 0])


def frame_bytes(frame: vs.VideoFrame) -> bytes:
    return b"".join(np.ascontiguousarray(np.asarray(frame[p])).tobytes() for p in range(frame.format.num_planes))


def write_panning_frames(folder, count: int) -> None:
    """``count`` 64x64 8-bit PNG frames of a textured gradient panning 2 pixels per frame."""
    from vsrestore.training.data import write_image

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 60, size=(64, 2 * count + 64, 3))
    ramp = np.linspace(0, 190, 2 * count + 64)[None, :, None]
    for t in range(count):
        frame = (texture + ramp)[:, t * 2 : t * 2 + 64]
        write_image(folder / f"frame{t}.png", np.clip(frame, 0, 255).astype(np.uint8))


def assert_same_bytes_in_any_order(node: vs.VideoNode, reference: list[bytes], seed: int) -> None:
    """Every frame, requested twice in a shuffled order from four threads, equals ``reference``."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    order = list(range(node.num_frames)) * 2
    random.Random(seed).shuffle(order)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda n: frame_bytes(node.get_frame(n)), order))
    assert got == [reference[n] for n in order]
