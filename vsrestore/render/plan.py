"""Chunks: runs of whole scenes, each at least ``min_frames`` long, split only where a scene starts."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start..end`` (inclusive, like ``vspipe -s START -e END``), rendered as one segment."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


def make_chunks(num_frames: int, scene_starts: Iterable[int], min_frames: int) -> list[Chunk]:
    """Split ``num_frames`` output frames at scene starts into chunks of at least ``min_frames``.

    Scenes are merged greedily from the start until a chunk holds ``min_frames``; a long scene is
    never split (only a cut is a safe boundary). A last chunk shorter than ``min_frames`` joins the
    one before it. A clip shorter than ``min_frames`` is one chunk.
    """
    if num_frames < 1:
        raise ValueError(f"the output has no frames ({num_frames})")
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1; got {min_frames}")
    cuts = sorted({s for s in scene_starts if 0 < s < num_frames})
    bounds = [0]
    for s in cuts:
        if s - bounds[-1] >= min_frames:
            bounds.append(s)
    if len(bounds) > 1 and num_frames - bounds[-1] < min_frames:
        bounds.pop()
    ends = [b - 1 for b in bounds[1:]] + [num_frames - 1]
    return [Chunk(i, start, end) for i, (start, end) in enumerate(zip(bounds, ends))]
