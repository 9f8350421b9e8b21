"""Scene-cut detection with VapourSynth's built-in plugins only."""
from __future__ import annotations

import vapoursynth as vs

from ..bridge.windows import shift
from .checks import fail

NAME = "scene_changes"
core = vs.core


def scene_changes(clip: vs.VideoNode, threshold: float = 0.1) -> vs.VideoNode:
    """Mark scene cuts with ``_SceneChangePrev`` / ``_SceneChangeNext`` frame props.

    A cut lies between frames n and n+1 when the mean absolute difference of their luma (the G plane
    for RGB), normalised to [0, 1] by ``std.PlaneStats``, exceeds ``threshold``. Frame n then gets
    ``_SceneChangeNext=1`` and frame n+1 ``_SceneChangePrev=1``; every other frame gets 0 for both.
    vsrestore's windows never mix frames from both sides of such a cut.

    Args:
        clip: any constant-format video clip.
        threshold: in (0, 1); lower finds more cuts. 0.1 suits hard cuts in natural video.

    Raises:
        vs.Error: ``vsrestore.scene_changes: ...`` naming the bad argument.
    """
    # vs.Error like every vsrestore filter, so scripts and vspipe report it the same way.
    if not isinstance(clip, vs.VideoNode):
        fail(NAME, f"clip must be a VapourSynth video clip, not {type(clip).__name__}")
    if clip.format is None or clip.format.id == vs.NONE or clip.width == 0 or clip.height == 0:
        fail(NAME, "clip must have a constant format and frame size (variable clips are not supported)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        fail(NAME, f"threshold must be a number in (0, 1) (exclusive); got {threshold!r}")
    plane = 1 if clip.format.color_family == vs.RGB else 0
    diff_next = core.std.PlaneStats(clip, shift(clip, 1), plane=plane, prop="Next")
    diff_prev = core.std.PlaneStats(clip, shift(clip, -1), plane=plane, prop="Prev")

    def mark(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        # At the clip's edges the shifted frame is the frame itself: difference 0, never a cut.
        out.props["_SceneChangeNext"] = int(f[1].props["NextDiff"] > threshold)
        out.props["_SceneChangePrev"] = int(f[2].props["PrevDiff"] > threshold)
        return out

    return core.std.ModifyFrame(clip, [clip, diff_next, diff_prev], mark)
