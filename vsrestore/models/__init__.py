"""Model registry and loading: ``vsrestore.models.load(...)`` builds any network vsrestore knows."""
from .loading import LoadedModel, ModelInfo, build_from_state_dict, load, load_model, read_checkpoint, save, shipped_models
from .registry import ARCHS, Arch, arch_of, detect_arch, get_arch, register

__all__ = [
    "ARCHS",
    "Arch",
    "LoadedModel",
    "ModelInfo",
    "arch_of",
    "build_from_state_dict",
    "detect_arch",
    "get_arch",
    "load",
    "load_model",
    "read_checkpoint",
    "register",
    "save",
    "shipped_models",
]
