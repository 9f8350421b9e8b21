"""The window engine: neighbouring frames wired in the graph, clamped at clip edges and scene cuts.

A filter never calls ``get_frame()`` inside a frame callback. Instead every frame of a window comes
from its own clip, shifted in the graph, and all of them are inputs of one ``std.ModifyFrame`` node,
so VapourSynth fetches the neighbours in parallel before the callback runs. The callback then clamps
the window at scene cuts (which only frame props reveal) by re-using frames it already has.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import vapoursynth as vs

core = vs.core


def shift(clip: vs.VideoNode, k: int) -> vs.VideoNode:
    """Frame n of the result is frame ``clamp(n + k, 0, N - 1)`` of ``clip`` (edges repeat)."""
    n = clip.num_frames
    if k == 0:
        return clip
    if abs(k) >= n:  # everything clamps to one end
        return clip[-1] * n if k > 0 else clip[0] * n
    if k > 0:
        return clip[k:] + clip[-1] * k
    return clip[0] * (-k) + clip[: n + k]


def is_cut(before: vs.VideoFrame, after: vs.VideoFrame) -> bool:
    """True when a scene cut lies between two consecutive source frames.

    Either side may carry the mark: ``_SceneChangeNext`` on the last frame of a scene or
    ``_SceneChangePrev`` on the first frame of the next.
    """
    return bool(before.props.get("_SceneChangeNext", 0)) or bool(after.props.get("_SceneChangePrev", 0))


@dataclass(frozen=True)
class Window:
    """The frames a network sees for one output frame.

    ``indices`` are the absolute source frame numbers after clamping; two windows with equal indices
    hold the same pixels, which makes them usable as cache keys.
    """

    n: int
    indices: tuple[int, ...]
    frames: tuple[vs.VideoFrame, ...]

    @property
    def centre(self) -> vs.VideoFrame:
        return self.frames[len(self.frames) // 2]


class SlidingWindow:
    """Frames ``t - radius .. t + radius`` around output frame t, for filters with stride 1."""

    def __init__(self, clip: vs.VideoNode, radius: int) -> None:
        if radius < 0:
            raise ValueError(f"radius must be >= 0, not {radius}")
        self.clip = clip
        self.radius = radius

    @property
    def size(self) -> int:
        return 2 * self.radius + 1

    def clips(self) -> list[vs.VideoNode]:
        """One clip per window slot, in slot order (oldest first)."""
        return [shift(self.clip, k) for k in range(-self.radius, self.radius + 1)]

    def resolve(self, n: int, frames: Sequence[vs.VideoFrame]) -> Window:
        """Clamp the window of output frame ``n`` at scene cuts; ``frames`` come from :meth:`clips`."""
        r, last = self.radius, self.clip.num_frames - 1
        absolute = [min(max(n + k, 0), last) for k in range(-r, r + 1)]
        source = list(range(self.size))  # which received slot each slot takes its frame from
        # A slot past a cut (or past the clip's edge) repeats the last frame of the centre's scene.
        for j in range(r + 1, self.size):
            prev = source[j - 1]
            if absolute[j] == absolute[prev] or is_cut(frames[prev], frames[j]):
                source[j:] = [prev] * (self.size - j)
                break
        for j in range(r - 1, -1, -1):
            nxt = source[j + 1]
            if absolute[j] == absolute[nxt] or is_cut(frames[j], frames[nxt]):
                source[: j + 1] = [nxt] * (j + 1)
                break
        return Window(
            n=n,
            indices=tuple(absolute[s] for s in source),
            frames=tuple(frames[s] for s in source),
        )


Render = Callable[[int, Sequence[vs.VideoFrame], vs.VideoFrame], None]


def windowed_node(
    template: vs.VideoNode,
    inputs: Sequence[vs.VideoNode],
    render: Render,
    *,
    num_streams: int = 1,
) -> vs.VideoNode:
    """A node whose frame n is ``render(n, [input frames n], out)`` written into a copy of ``template``.

    ``template`` fixes the output's format, size, length and frame rate (e.g. a BlankClip);
    ``inputs`` are clips of the same length, aligned to output frame numbers. VapourSynth runs one
    callback at a time per node, so ``num_streams`` > 1 splits the frames round-robin over that many
    nodes (frame n goes to node n mod num_streams) and interleaves them back: that many frames are
    then rendered at once.
    """
    if not isinstance(num_streams, int) or isinstance(num_streams, bool) or num_streams < 1:
        raise ValueError(f"num_streams must be an integer >= 1, not {num_streams!r}")
    for clip in inputs:
        if clip.num_frames != template.num_frames:
            raise ValueError("every window input must have the output's length")
    streams = min(num_streams, template.num_frames)

    def make_callback(offset: int) -> Callable[[int, list[vs.VideoFrame]], vs.VideoFrame]:
        def callback(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            out = f[0].copy()
            render(n * streams + offset, f[1:], out)
            return out

        return callback

    if streams == 1:
        return core.std.ModifyFrame(template, [template, *inputs], make_callback(0))
    nodes = []
    for offset in range(streams):
        part = [core.std.SelectEvery(c, streams, offset, modify_duration=False) for c in (template, *inputs)]
        nodes.append(core.std.ModifyFrame(part[0], part, make_callback(offset)))
    return core.std.Interleave(nodes, modify_duration=False)


def copy_props(src: vs.VideoFrame, dst: vs.VideoFrame) -> None:
    """Replace ``dst``'s props with ``src``'s (matrix, range, durations, scene flags, ...)."""
    dst.props.clear()
    dst.props.update(src.props)
