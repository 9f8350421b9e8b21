"""Loading and saving weights: the authors' ``.pth`` checkpoints and vsrestore's ``.safetensors``.

vsrestore ships weights as safetensors (no pickle, so loading a file can't run code) with metadata:
architecture, config, task, bit contract or QP, training data and figures. The authors' PyTorch
checkpoints load unchanged, through ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .registry import ARCHS, Arch, detect_arch, get_arch

_WRAPPERS = ("state_dict", "params_ema", "params", "model", "netG")
_PREFIXES = ("module.", "_orig_mod.")


def weights_dirs() -> list[Path]:
    """Folders searched for shipped model names: ``$VSRESTORE_WEIGHTS``, then the repo's ``weights/``."""
    dirs = [Path(p) for p in os.environ.get("VSRESTORE_WEIGHTS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "weights")
    return dirs


def shipped_models() -> dict[str, Path]:
    """Names of the shipped models (file stems of ``*.safetensors``) and their files."""
    found: dict[str, Path] = {}
    for folder in weights_dirs():
        for path in sorted(folder.glob("*.safetensors")):
            found.setdefault(path.stem, path)
    return found


def _clean_state_dict(raw: Any, source: str) -> dict[str, Tensor]:
    if isinstance(raw, Mapping):
        for key in _WRAPPERS:
            if key in raw and isinstance(raw[key], Mapping):
                raw = raw[key]
                break
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ValueError(f"{source} does not hold a state dict of tensors")
    cleaned = {}
    for key, value in raw.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned


def _contract_from_path(path: Path) -> dict[str, Any]:
    """The authors keep MSTFN checkpoints in folders named ``<in bits>_<out bits>``."""
    for part in reversed(path.parts[:-1]):
        if m := re.fullmatch(r"(\d{1,2})_(\d{1,2})", part):
            return {"in_bits": int(m.group(1)), "out_bits": int(m.group(2))}
    return {}


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and metadata of a ``.safetensors`` or PyTorch checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        meta = {k: json.loads(v) for k, v in raw_meta.items()}
        return load_file(str(path)), meta
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files: say which file and why
        raise ValueError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from exc
    return _clean_state_dict(raw, str(path)), _contract_from_path(path)


def build_from_state_dict(
    state_dict: Mapping[str, Tensor], arch: str | Arch | None = None, config: Any = None
) -> nn.Module:
    """Build the network for ``state_dict`` and load it strictly; errors name bad keys."""
    state_dict = _clean_state_dict(dict(state_dict), "state_dict")
    spec = get_arch(arch) if isinstance(arch, str) else (arch or detect_arch(state_dict))
    if config is None:
        try:
            config = spec.infer_config(state_dict)
        except KeyError as exc:
            raise ValueError(f"checkpoint is missing {spec.name} key {exc.args[0]!r}") from None
    model = spec.build(config)
    state_dict = {k: v for k, v in state_dict.items() if not spec.derived_keys(k)}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not spec.derived_keys(k)]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
            if keys:
                more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
                parts.append(f"{label}: {', '.join(keys[:8])}{more}")
        raise ValueError(f"checkpoint does not fit {spec.name}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=False)
    return model.eval().requires_grad_(False)


def load(
    source: str | os.PathLike[str] | Mapping[str, Tensor],
    arch: str | None = None,
    *,
    config: Any = None,
) -> nn.Module:
    """Load a network from a checkpoint file, a shipped model name or a state dict.

    Args:
        source: a ``.pth``/``.pt`` file (e.g. the MSTFN authors' ``netG_weights_epo61.pth``, with or
            without the ``module.`` prefix), a vsrestore ``.safetensors`` file, the name of a model
            in ``weights/`` (see :func:`shipped_models`), or a state dict.
        arch: ``"mstfn"``, ``"stifn"`` or ``"msitf"``; recognised from the keys when omitted.
        config: the architecture's config (object, dict or preset name) when the checkpoint carries
            none and it can't be read from the tensor shapes.

    Returns:
        The network in eval mode, on the CPU, with gradients off. ``model.vsrestore_meta`` holds what
        the file says about itself (arch, task, bit contract ``in_bits``/``out_bits``, ``qp``, ...).
    """
    meta: dict[str, Any] = {}
    if isinstance(source, Mapping):
        state_dict = source
    else:
        text = os.fspath(source)
        shipped = shipped_models()
        path = shipped[text] if text in shipped else Path(text)
        if not path.exists():
            raise ValueError(
                f"model {text!r} is neither a file nor a shipped model; shipped: {sorted(shipped) or 'none'}"
            )
        state_dict, meta = read_checkpoint(path)
    arch = arch or meta.get("arch")
    if config is None and "config" in meta:
        config = get_arch(arch).config_from_dict(meta["config"]) if arch else None
    model = build_from_state_dict(state_dict, arch, config)
    model.vsrestore_meta = {"arch": next(a for a, s in ARCHS.items() if isinstance(model, s.network)), **meta}
    return model


def save(model: nn.Module, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as ``.safetensors`` with its arch, config and ``metadata`` (JSON values)."""
    from safetensors.torch import save_file

    arch = next((name for name, spec in ARCHS.items() if isinstance(model, spec.network)), None)
    if arch is None:
        raise ValueError(f"cannot save a {type(model).__name__}: not a registered architecture")
    spec = ARCHS[arch]
    meta = {"arch": arch, "config": dataclasses.asdict(model.config), **(metadata or {})}
    tensors = {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not spec.derived_keys(k)
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    return path
