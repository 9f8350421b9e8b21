"""``vsrestore render``: a script's output to an x265/x264/FFV1 encode, in chunks on several processes.

- :mod:`.script`: run a ``.vpy`` the way ``vspipe`` does (``-a key=value`` globals, its folder as cwd);
- :mod:`.scenes`: where scenes start in the output (output 1's props, the output's, a detector);
- :mod:`.plan`: chunks of whole scenes, at least N frames each;
- :mod:`.formats`: encoder pixel formats, depth checks, colour description from frame props;
- :mod:`.segment`: VapourSynth frames into a Matroska segment with PyAV; decoding checks;
- :mod:`.worker`: one chunk in its own process (``python -m vsrestore.render.worker``);
- :mod:`.process`: starting a worker and following its report; :mod:`.pool`: what pools report;
- :mod:`.local`, :mod:`.ray_backend`: local worker processes, Ray tasks;
- :mod:`.manifest`: the work directory's manifest (atomic) and lock; :mod:`.concat`: lossless remux;
- :mod:`.job`: :func:`render`, the driver tying them together.

Submodules import VapourSynth and PyAV; importing this package alone does not.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["EncoderSettings", "RenderOptions", "RenderResult", "render"]

if TYPE_CHECKING:
    from .formats import EncoderSettings
    from .job import RenderOptions, RenderResult, render


def __getattr__(name: str) -> Any:
    if name == "EncoderSettings":
        from .formats import EncoderSettings as value
    elif name in ("RenderOptions", "RenderResult", "render"):
        from . import job

        value = getattr(job, name)
    else:
        raise AttributeError(f"module 'vsrestore.render' has no attribute {name!r}")
    globals()[name] = value
    return value
