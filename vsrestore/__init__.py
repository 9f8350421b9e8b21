"""vsrestore: neural video restoration as VapourSynth filters.

- :func:`mstfn`: bit-depth enhancement (MSTFN);
- :func:`scene_changes`: marks scene cuts so windows never cross them;
- :mod:`vsrestore.models`: the registry of networks and ``load`` for checkpoints.
"""
from . import models
from .bridge.scenes import scene_changes
from .filters.mstfn import mstfn

__all__ = ["models", "mstfn", "scene_changes"]
__version__ = "0.1.0"
