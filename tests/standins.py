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
