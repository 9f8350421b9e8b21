"""Loading and saving weights: the authors' ``.pth`` checkpoints and vsrestore's ``.safetensors``.

vsrestore ships weights as safetensors (no pickle, so loading a file can't run code) with metadata:
architecture, config, task, bit contract or QP, training data and figures. The authors' PyTorch
checkpoints load unchanged, through ``torch.load(weights_only=True)``. Every failure is a
``ValueError`` naming the file and the problem.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import shipped
from .registry import Arch, arch_of, detect_arch, get_arch

_WRAPPERS = ("state_dict", "params_ema", "params", "model", "netG")
_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a loaded network: its architecture and what its file says about itself."""

    arch: str
    name: str
    task: str | None = None
    in_bits: int | None = None  # MSTFN: significant input bits it was trained for
    out_bits: int | None = None
    qp: int | None = None  # STIFN: the QP it was trained at
    metadata: Mapping[str, Any] = field(default_factory=dict)  # everything the file's metadata holds

    @classmethod
    def from_metadata(cls, arch: str, name: str, meta: Mapping[str, Any]) -> ModelInfo:
        def number(key: str) -> int | None:
            value = meta.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        task = meta.get("task")
        return cls(arch, name, task if isinstance(task, str) else None, number("in_bits"), number("out_bits"),
                   number("qp"), dict(meta))

    @classmethod
    def of_module(cls, module: nn.Module) -> ModelInfo:
        """A caller's own module: its architecture if it is a registered one, and no contract."""
        spec = arch_of(module)
        return cls(spec.name if spec else "", type(module).__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode on the CPU, and what is known about it."""

    network: nn.Module
    info: ModelInfo


def shipped_models() -> dict[str, Path]:
    """Names that :func:`load` takes instead of a path, and their files (see :mod:`.shipped`)."""
    return shipped.shipped_models()


def _clean_state_dict(raw: Any, source: str) -> dict[str, Tensor]:
    if isinstance(raw, Mapping):
        for key in _WRAPPERS:
            if key in raw and isinstance(raw[key], Mapping):
                raw = raw[key]
                break
    if not isinstance(raw, Mapping) or not raw or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in raw.items()
    ):
        raise ValueError(f"{source} does not hold a state dict of named tensors")
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
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                raw_meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise ValueError(f"cannot read {path} as safetensors: {exc}") from None
        try:
            meta = {k: json.loads(v) for k, v in raw_meta.items()}
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: its metadata is not vsrestore's (a value is not JSON: {exc})") from None
        return _clean_state_dict(tensors, str(path)), meta
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusals, truncated files: say which file and why
        raise ValueError(f"cannot read {path} as a PyTorch checkpoint (only plain tensors are loaded): {exc}") from None
    return _clean_state_dict(raw, str(path)), _contract_from_path(path)


def _check_keys(spec: Arch, state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    missing = [k for k in expected if k not in state_dict]
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


def build_from_state_dict(
    state_dict: Mapping[str, Tensor], arch: str | Arch | None = None, config: Any = None
) -> nn.Module:
    """Build the network for ``state_dict`` and load it strictly; errors name bad keys.

    The shapes are checked on a network built on the ``meta`` device first (no memory, no time), so
    a file whose config promises a huge network fails at once instead of after allocating it.
    """
    state_dict = _clean_state_dict(dict(state_dict), "state_dict")
    spec = get_arch(arch) if isinstance(arch, str) else (arch or detect_arch(state_dict))
    if config is None:
        try:
            config = spec.infer_config(state_dict)
        except KeyError as exc:
            raise ValueError(f"checkpoint is missing {spec.name} key {exc.args[0]!r}") from None
        except (IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"checkpoint does not look like a {spec.name} network: {exc}") from None
    config = spec.resolve_config(config)
    state_dict = {k: v for k, v in state_dict.items() if not spec.is_computed_key(k)}
    with torch.device("meta"):
        expected = spec.build(config).state_dict()
    _check_keys(spec, state_dict, {k: v for k, v in expected.items() if not spec.is_computed_key(k)})
    model = spec.build(config)
    model.load_state_dict(state_dict, strict=False)
    return model.eval().requires_grad_(False)


def load_model(
    source: str | os.PathLike[str] | Mapping[str, Tensor],
    arch: str | None = None,
    *,
    config: Any = None,
) -> LoadedModel:
    """Load a network and what its file says about itself; see :func:`load`."""
    meta: dict[str, Any] = {}
    if isinstance(source, Mapping):
        state_dict, name = source, "state_dict"
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        entries = shipped.catalogue()
        if text in entries:
            shipped.verify(entries[text])
            path = entries[text].path
        else:
            path = Path(text)
        if not path.exists():
            raise ValueError(
                f"model {text!r} is neither a file nor a shipped model; shipped: {sorted(entries) or 'none'}"
            )
        state_dict, meta = read_checkpoint(path)
        name = text if text in entries else path.name
    else:
        raise ValueError(
            f"model must be a file path, a shipped model name or a state dict, not {type(source).__name__}"
        )
    file_arch = meta.get("arch")
    if file_arch is not None and not isinstance(file_arch, str):
        raise ValueError(f"{name}: metadata arch must be a name, not {file_arch!r}")
    if arch is not None and file_arch is not None and get_arch(arch).name != get_arch(file_arch).name:
        raise ValueError(f"{name} is an {file_arch.upper()} model, not {arch.upper()}")
    arch = arch or file_arch
    if config is None and "config" in meta:
        if arch is None:
            raise ValueError(f"{name}: its metadata has a config but no arch")
        config = get_arch(arch).config_from_dict(meta["config"])
    model = build_from_state_dict(state_dict, arch, config)
    spec = arch_of(model)
    return LoadedModel(model, ModelInfo.from_metadata(spec.name if spec else "", name, meta))


def load(
    source: str | os.PathLike[str] | Mapping[str, Tensor],
    arch: str | None = None,
    *,
    config: Any = None,
) -> nn.Module:
    """Load a network from a checkpoint file, a shipped model name or a state dict.

    Args:
        source: a ``.pth``/``.pt`` file (e.g. the MSTFN authors' ``netG_weights_epo61.pth``, with or
            without the ``module.`` prefix), a vsrestore ``.safetensors`` file, the name of a shipped
            model (see :func:`shipped_models`), or a state dict.
        arch: ``"mstfn"``, ``"stifn"`` or ``"msitf"``; recognised from the keys when omitted.
        config: the architecture's config (object, dict or preset name) when the checkpoint carries
            none and it can't be read from the tensor shapes.

    Returns:
        The network in eval mode, on the CPU, with gradients off. :func:`load_model` returns it with
        a :class:`ModelInfo` (architecture, task, bit contract ``in_bits``/``out_bits``, ``qp``, ...).
    """
    return load_model(source, arch, config=config).network


def save(model: nn.Module, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as ``.safetensors`` with its arch, config and ``metadata`` (JSON values)."""
    from safetensors.torch import save_file

    spec = arch_of(model)
    if spec is None:
        raise ValueError(f"cannot save a {type(model).__name__}: not a registered architecture")
    meta = {"arch": spec.name, "config": dataclasses.asdict(model.config), **(metadata or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not spec.is_computed_key(k)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    return path
