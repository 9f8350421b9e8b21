"""The string options of ``vsrestore render`` (no VapourSynth import: the command line reads these)."""
from __future__ import annotations

from typing import Literal

Codec = Literal["x265", "x264", "ffv1"]
Dither = Literal["error_diffusion", "ordered", "none"]
SceneSource = Literal["auto", "source", "output", "none"]
CODEC_NAMES: tuple[Codec, ...] = ("x265", "x264", "ffv1")
DITHERS: tuple[Dither, ...] = ("error_diffusion", "ordered", "none")
SCENE_SOURCES: tuple[SceneSource, ...] = ("auto", "source", "output", "none")
