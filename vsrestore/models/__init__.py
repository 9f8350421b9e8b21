"""Model registry and loading: ``vsrestore.models.load(...)`` builds any network vsrestore knows."""
from .loading import build_from_state_dict, load, read_checkpoint, save, shipped_models
from .registry import ARCHS, Arch, detect_arch, get_arch, register

__all__ = [
    "ARCHS",
    "Arch",
    "build_from_state_dict",
    "detect_arch",
    "get_arch",
    "load",
    "read_checkpoint",
    "register",
    "save",
    "shipped_models",
]
