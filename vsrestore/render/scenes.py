"""Where scenes start in the rendered output: the only places a render is split into chunks.

vsrestore's windows never cross a scene cut, so a chunk that starts where a scene starts needs no
frame of the chunk before it (and each chunk process renders the whole script anyway, so every
frame comes out as one process would make it).

Reading cuts costs frames. The output's own props (``_SceneChangePrev``) are only known once the
output frames are rendered, which for a neural filter is the whole job once more. So a script may
set its source clip, with scene props, as output 1: its frames are cheap (a decode and
``std.PlaneStats``), and its cuts are mapped onto the output by time (output frame
``ceil(s * out_fps / src_fps)`` starts where source frame ``s`` does: ``2s`` for msitf's doubled
rate, ``s`` for filters that keep the rate). Without output 1, or with ``scenes="output"``, the
output node is rendered once in the planning pass.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import vapoursynth as vs

from .choices import SceneSource

core = vs.core


@dataclass(frozen=True)
class Cuts:
    """Output frames that start a scene (frame 0 excluded), and how they were found."""

    starts: tuple[int, ...]
    how: str  # for the log line and the manifest, e.g. "output 1's scene props"
    from_props: bool  # read from _SceneChangePrev props: each worker checks its first frame against them


def detector(clip: vs.VideoNode, threshold: float) -> tuple[vs.VideoNode, str]:
    """``clip`` with scene props from ``scd.Detect`` when that plugin is installed (with its own
    default threshold: its scale is a luma difference, not ours), else from
    :func:`vsrestore.scene_changes` with ``threshold``; and the detector's name."""
    if hasattr(core, "scd") and hasattr(core.scd, "Detect"):
        return core.scd.Detect(clip), "scd.Detect"
    from ..filters.scenes import scene_changes

    return scene_changes(clip, threshold=threshold), "vsrestore.scene_changes"


def read_scene_starts(clip: vs.VideoNode, *, detect: bool, threshold: float,
                      progress: Callable[[int], None] | None = None) -> tuple[list[int], str, bool]:
    """Frames of ``clip`` that start a scene, excluding frame 0: frames with ``_SceneChangePrev=1``
    and frames after one with ``_SceneChangeNext=1`` (vsrestore's windows honour both).

    The clip's own props are used when its first frame has either prop and ``detect`` is False;
    otherwise a detector pass sets them. Returns (frames, what was used, whether they came from
    props with every start marked ``_SceneChangePrev=1``, which the workers then check on the output).
    """
    first = clip.get_frame(0)
    from_props = not detect and ("_SceneChangePrev" in first.props or "_SceneChangeNext" in first.props)
    del first
    if from_props:
        marked, how = clip, "scene props"
    else:
        marked, how = detector(clip, threshold)
        if how == "vsrestore.scene_changes":
            how += f" (threshold {threshold})"
    starts = []
    ends_scene = False  # the frame before had _SceneChangeNext=1
    prev_marked = True  # every start carries _SceneChangePrev=1 (what a worker can check on the output)
    for n, frame in enumerate(marked.frames(close=True)):
        marked_prev = bool(int(frame.props.get("_SceneChangePrev", 0)))
        if n and (ends_scene or marked_prev):
            starts.append(n)
            prev_marked &= marked_prev
        ends_scene = bool(int(frame.props.get("_SceneChangeNext", 0)))
        if progress is not None:
            progress(1)
    return starts, how, from_props and prev_marked


def map_to_output(starts: list[int], source: vs.VideoNode, output: vs.VideoNode) -> list[int]:
    """Scene starts of ``source`` (output 1) as output frames: the first output frame at or after the
    source frame's time, ``ceil(s * out_fps / src_fps)``; a ValueError when the clips' rates are
    unknown or they do not span the same time."""
    src_fps, out_fps = Fraction(source.fps), Fraction(output.fps)
    if source.num_frames == output.num_frames and (src_fps == out_fps or not src_fps or not out_fps):
        return list(starts)
    if not src_fps or not out_fps:
        raise ValueError("output 1 (scene source) and the output have different lengths and one has a "
                         "variable frame rate (fps 0); scene cuts cannot be mapped by time")
    ratio = out_fps / src_fps
    # msitf "2n-1" makes 2N-1 frames from N (ratio 2): the spans may differ by up to one frame at the end.
    if abs(source.num_frames * ratio - output.num_frames) > max(ratio, 1):
        raise ValueError(f"output 1 (scene source, {source.num_frames} frames at {src_fps} fps) does not span "
                         f"the same time as the output ({output.num_frames} frames at {out_fps} fps); set the "
                         f"output's source as output 1 or pass --scenes output")
    mapped = (math.ceil(s * ratio) for s in starts)
    return sorted({m for m in mapped if 0 < m < output.num_frames})


def find_cuts(main: vs.VideoNode, scenes: vs.VideoNode | None, source: SceneSource, *, detect: bool = False,
              threshold: float = 0.1, progress: Callable[[int], None] | None = None) -> Cuts:
    """Output frames where a chunk may start.

    ``source``: ``"source"`` reads output 1 (``scenes``; a ValueError when the script sets none),
    ``"output"`` the output node itself (rendering it once), ``"auto"`` output 1 when set, else the
    output, ``"none"`` no cuts (one chunk). ``detect`` ignores props and runs the detector.
    """
    if source == "none":
        return Cuts((), "none (--scenes none)", False)
    if source == "source" and scenes is None:
        raise ValueError("--scenes source needs the script to set its source clip as output 1 "
                         "(src.set_output(1)), with scene props or for the detector")
    if source in ("source", "auto") and scenes is not None:
        starts, how, from_props = read_scene_starts(scenes, detect=detect, threshold=threshold, progress=progress)
        return Cuts(tuple(map_to_output(starts, scenes, main)), f"output 1's {how}", from_props)
    starts, how, from_props = read_scene_starts(main, detect=detect, threshold=threshold, progress=progress)
    return Cuts(tuple(starts), f"the output's {how}", from_props)
