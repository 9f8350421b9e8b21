"""Windows for space-time networks that make 2W-1 frames from W (MSITF: 7 outputs from 4 inputs).

The window length W is a parameter (the filter passes its network's); nothing here knows a network.

Layout, per scene: windows of W source frames with stride W-1 (neighbours share a frame) on a grid
starting at frame 0; a window that would run past the clip's end is aligned to the end instead, so
every output frame exists. Output 2s belongs to source frame s, output 2s+1 is the midpoint between
s and s+1; an output two windows could make comes from the earlier one (the authors' rule).

Scene cuts: a grid window that contains a cut is replaced, for the frames before the cut, by a
window aligned to the end of their scene and, for the frames after, by one aligned to the start of
theirs; a scene shorter than W frames fills its window by repeating its last frame. The midpoint
output across a cut is not interpolated: it repeats the output of the last frame before the cut.

Everything is decided from frames at most 2W-3 before and 2W-2 after the grid window's first frame
(5 and 6 for W=4), all wired in the graph, so any output can be computed alone, in any order.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
import vapoursynth as vs

from .cache import BoundedCache
from .windows import copy_props, is_cut, shift, windowed_node

core = vs.core


def window_stride(window: int) -> int:
    """Distance between grid windows of ``window`` frames: neighbours share one frame."""
    return window - 1


def outputs_per_window(window: int) -> int:
    """Outputs a network makes from ``window`` frames: the frames and the midpoints between them."""
    return 2 * window - 1


def look_around(window: int) -> tuple[int, int]:
    """Source frames before and after a grid window's first frame wired for its outputs (5, 6 for 4).

    Ahead, ``2 * (window - 1)``: output 2(start + W - 1), the grid window's last frame, belongs to
    this grid window (the earlier of the two that share it); a scene may open exactly there, and
    the window aligned to that scene's start runs W - 1 frames further.

    Behind, ``2 * window - 3``: no frame read lies before ``start - (W - 1)``. The window is the
    grid window, an end-of-clip one (it starts at N - W, and an output of this grid window
    belongs to a frame s with start <= s <= N - 1), or one aligned to the end or the start of
    s's scene (an end at or after s): each starts at or after s - (W - 1). The wired 2W - 3 is
    the looser bound this module always used (an end-of-clip shift of W - 2 plus a scene end
    reaching W - 1 back); it is >= W - 1 for every W >= 2 and keeps the 4-frame graph unchanged.
    """
    return 2 * window - 3, 2 * (window - 1)


@dataclass(frozen=True)
class SpaceTimeWindow:
    """What output frame ``m`` needs: a window of source frames and which of its outputs to take."""

    m: int
    indices: tuple[int, ...]  # absolute source frames of the window (W, repeats at short scenes)
    frames: tuple[vs.VideoFrame, ...]
    position: int  # index into the network's 2W-1 outputs
    anchor: vs.VideoFrame  # the source frame whose props the output keeps


def output_length(num_frames: int, length: str) -> int:
    """2N-1 (``"2n-1"``, the paper's) or 2N (``"2n"``: the last frame repeated once more)."""
    return 2 * num_frames - 1 if length == "2n-1" else 2 * num_frames


def grid_index(m: int, window: int) -> int:
    """Grid window (of ``window`` frames) that makes output ``m`` (the earlier one where two could)."""
    return 0 if m == 0 else (m - 1) // (2 * window_stride(window))


class SpaceTimeWindows:
    """Wires, for every output frame, the source frames its window may need and resolves the window."""

    def __init__(self, clip: vs.VideoNode, length: str = "2n-1", *, window: int) -> None:
        """``window``: source frames per network call, W >= 2 (the network makes 2W-1 outputs)."""
        if length not in ("2n-1", "2n"):
            raise ValueError(f'length must be "2n-1" or "2n", not {length!r}')
        if not isinstance(window, int) or isinstance(window, bool) or window < 2:
            raise ValueError(f"window must be an integer >= 2, not {window!r}")
        self.clip = clip
        self.length = length
        self.window = window
        self.stride = window_stride(window)
        self.outputs_per_window = outputs_per_window(window)
        self.look_behind, self.look_ahead = look_around(window)
        self.num_outputs = output_length(clip.num_frames, length)

    def clips(self) -> list[vs.VideoNode]:
        """One clip per neighbour offset ``-look_behind..look_ahead`` of the grid window start,
        indexed by output frame."""
        out = []
        for k in range(-self.look_behind, self.look_ahead + 1):
            per_grid = core.std.SelectEvery(shift(self.clip, k), self.stride, 0, modify_duration=False)
            per_output = per_grid[0] + core.std.Interleave([per_grid] * (2 * self.stride), modify_duration=False)
            out.append(per_output[: self.num_outputs])
        return out

    def resolve(self, m: int, frames: Sequence[vs.VideoFrame]) -> SpaceTimeWindow:
        """The window and output position for output ``m``; ``frames`` come from :meth:`clips`."""
        n = self.clip.num_frames
        window = self.window
        start = self.stride * grid_index(m, window)  # of the frames wired for m, before the tail remap below
        if m == 2 * n - 1:  # the "2n" tail repeats the last frame
            m = 2 * n - 2
        base = start - self.look_behind  # frames[j] is source frame clamp(base + j)
        last = n - 1

        def frame(i: int) -> vs.VideoFrame:
            # Slot j holds source frame clamp(base + j); every i asked for here lies in 0..last.
            return frames[i - base]

        def cut_after(i: int) -> bool:  # a cut between source frames i and i+1 (or the clip's end)
            return i >= last or is_cut(frame(i), frame(i + 1))

        s, midpoint = divmod(m, 2)
        if midpoint and cut_after(s):
            midpoint = 0  # never a blend across a cut: repeat frame s's output
        # Grid window, aligned to the clip's end when it would run past it.
        lo = max(min(start, n - window), 0)
        hi = min(lo + window - 1, last)
        if any(cut_after(i) for i in range(lo, hi)):
            end = next((i for i in range(s, hi) if cut_after(i)), None)
            if end is not None:  # s's scene ends in this window: align to that end
                lo = end - window + 1
                while lo < 0 or any(cut_after(i) for i in range(lo, end)):
                    lo += 1
                hi = end
            else:  # s's scene starts in this window: align to that start
                lo = max(i for i in range(lo, s) if cut_after(i)) + 1
                hi = lo
                while hi < lo + window - 1 and not cut_after(hi):
                    hi += 1
        indices = tuple(min(lo + k, hi) for k in range(window))  # short scenes repeat their last frame
        return SpaceTimeWindow(
            m=m,
            indices=indices,
            frames=tuple(frame(i) for i in indices),
            position=2 * indices.index(s) + midpoint,
            anchor=frame(s),
        )


def doubled_rate_template(clip: vs.VideoNode, fmt: int, width: int, height: int, length: str) -> vs.VideoNode:
    """A blank clip with the output's format, size, 2N-1 or 2N frames and twice the frame rate."""
    if clip.fps.numerator == 0:
        raise ValueError("clip has a variable frame rate (fps 0); a doubled frame rate needs a constant one")
    fps = clip.fps * 2  # Fraction: stays exact (24000/1001 -> 48000/1001)
    return core.std.BlankClip(
        clip, width=width, height=height, format=fmt, length=output_length(clip.num_frames, length),
        fpsnum=fps.numerator, fpsden=fps.denominator, keep=True,
    )


def spacetime_node(
    clip: vs.VideoNode,
    template: vs.VideoNode,
    infer: Callable[[SpaceTimeWindow], torch.Tensor],
    write: Callable[[torch.Tensor, vs.VideoFrame], None],
    *,
    window: int,
    length: str = "2n-1",
    num_streams: int = 1,
    cache: BoundedCache[torch.Tensor] | None = None,
) -> vs.VideoNode:
    """Render a 2x-frame-rate clip with a network that makes 2W-1 outputs from W = ``window`` inputs.

    ``infer(win)`` runs the network once per distinct :class:`SpaceTimeWindow` and returns its
    2W-1 outputs (``(2W-1, ...)``, 7 for MSITF's 4 inputs; another count raises); a bounded
    cache, keyed by the window's source frame numbers, serves the outputs that share it
    (``cache``, by default room for ``2 * num_streams + 2`` windows: consecutive outputs share a
    window, so only the windows in flight need keeping). ``write(output, frame)`` stores one
    output in a frame of ``template``'s format. Each output frame keeps the props of its source
    frame, with half its duration.
    """
    windows = SpaceTimeWindows(clip, length, window=window)
    if cache is None:
        cache = BoundedCache(2 * num_streams + 2)

    def render(m: int, frames: Sequence[vs.VideoFrame], out: vs.VideoFrame) -> None:
        win = windows.resolve(m, frames)
        outputs = cache.get_or_compute(win.indices, lambda: infer(win))
        if outputs.shape[0] != windows.outputs_per_window:  # a network made for another window length
            raise ValueError(
                f"the network made {outputs.shape[0]} outputs from a window of {window} frames; "
                f"expected {windows.outputs_per_window}"
            )
        write(outputs[win.position], out)
        copy_props(win.anchor, out)
        # Output 2s and the midpoint 2s+1 both take frame s's props; only the midpoint can end a scene.
        if m % 2 == 0 and m + 1 < windows.num_outputs and "_SceneChangeNext" in out.props:
            out.props["_SceneChangeNext"] = 0
        if m % 2 == 1 and "_SceneChangePrev" in out.props:
            out.props["_SceneChangePrev"] = 0
        num, den = out.props.get("_DurationNum"), out.props.get("_DurationDen")
        if num and den:
            half = Fraction(int(num), int(den)) / 2
            out.props["_DurationNum"], out.props["_DurationDen"] = half.numerator, half.denominator

    return windowed_node(template, windows.clips(), render, num_streams=num_streams)
