"""vsrestore: neural video restoration as VapourSynth filters.

- :func:`mstfn`: bit-depth enhancement (MSTFN);
- :func:`msitf`: space-time super-resolution, x4 size and x2 frame rate (MSITF);
- :func:`stifn`: compression-artifact removal (STIFN);
- :func:`scene_changes`: marks scene cuts so windows never cross them;
- :mod:`vsrestore.models`: the registry of networks and ``load`` for checkpoints.

Attributes are imported on first use (PEP 562): ``import vsrestore.networks.mstfn`` or training code
does not load VapourSynth and the filters.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# MKL's strict reproducibility mode: float32 matrix products round the same on any number of
# threads, so a render worker on one thread reproduces vspipe on two (without it, MSITF in fp32
# differed by 1e-7; no measurable cost on this CPU). MKL reads it at its first call, so it holds
# unless the process already ran a BLAS call before importing vsrestore; a value the user set wins.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.2.0"

# public name -> module that defines it
_LAZY = {
    "mstfn": "vsrestore.filters.mstfn",
    "stifn": "vsrestore.filters.stifn",
    "msitf": "vsrestore.filters.msitf",
    "scene_changes": "vsrestore.filters.scenes",
}
__all__ = ["models", "msitf", "mstfn", "scene_changes", "stifn"]

if TYPE_CHECKING:
    from . import models
    from .filters.msitf import msitf
    from .filters.mstfn import mstfn
    from .filters.scenes import scene_changes
    from .filters.stifn import stifn


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "models":
        value = importlib.import_module("vsrestore.models")
    else:
        raise AttributeError(f"module 'vsrestore' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
