"""Running a ``.vpy`` script the way ``vspipe`` does, in this process.

vspipe (R81) runs a script with ``__name__ == "__vapoursynth__"``, ``__file__`` set, the working
directory changed to the script's folder and each ``-a key=value`` as a global string ``key``; a
render worker does the same, so a script renders identically under both.
"""
from __future__ import annotations

import hashlib
import os
import runpy
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import vapoursynth as vs


def script_digest(path: Path) -> str:
    """sha256 of the script's bytes: a resumed render must run the same script."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def _working_dir(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@dataclass(frozen=True)
class Outputs:
    """The nodes a script set: ``main`` (the rendered output) and ``scenes`` (output 1, if set)."""

    main: vs.VideoNode
    scenes: vs.VideoNode | None


def _video(value: object) -> vs.VideoNode | None:
    if isinstance(value, vs.VideoOutputTuple):  # an output with alpha: render the clip, not the alpha
        return value.clip
    return value if isinstance(value, vs.VideoNode) else None


def run_script(path: Path, args: Mapping[str, str], *, index: int = 0, scene_index: int | None = 1) -> Outputs:
    """Run ``path`` like ``vspipe -a key=value ... path`` and return its output ``index``.

    The script runs in this process's VapourSynth environment (a worker process runs one script).
    Output ``scene_index`` (default 1), when the script sets it to a video clip, is where render
    reads scene cuts cheaply (see :mod:`.scenes`). A script that raises, or sets no video output
    ``index``, is a ValueError.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ValueError(f"script not found: {path}")
    vs.clear_outputs()
    try:
        with _working_dir(path.parent):
            runpy.run_path(str(path), init_globals=dict(args), run_name="__vapoursynth__")
    except SystemExit as exc:
        raise ValueError(f"the script {path.name} called exit({exc.code})") from None
    except Exception as exc:  # the script's own error, reported as one line naming the script
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"the script {path.name} failed: {type(exc).__name__}: {message}") from None
    outputs = vs.get_outputs()
    main = _video(outputs.get(index))
    if main is None:
        what = "no output" if index not in outputs else "an audio output"
        raise ValueError(f"the script {path.name} sets {what} at index {index}; render needs a video clip "
                         f"(clip.set_output({index or ''}))")
    scenes = _video(outputs.get(scene_index)) if scene_index is not None and scene_index != index else None
    return Outputs(main=main, scenes=scenes)
