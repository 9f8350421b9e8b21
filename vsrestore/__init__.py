"""vsrestore: neural video restoration as VapourSynth filters.

- :func:`mstfn`: bit-depth enhancement (MSTFN);
- :func:`msitf`: space-time super-resolution, x4 size and x2 frame rate (MSITF);
- :func:`stifn`: compression-artifact removal (STIFN);
- :func:`scene_changes`: marks scene cuts so windows never cross them;
- :mod:`vsrestore.models`: the registry of networks and ``load`` for checkpoints.
"""
from . import models
from .bridge.scenes import scene_changes
from .filters.msitf import msitf
from .filters.mstfn import mstfn
from .filters.stifn import stifn

__all__ = ["models", "msitf", "mstfn", "scene_changes", "stifn"]
__version__ = "0.1.0"
