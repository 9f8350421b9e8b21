"""The registry of architectures vsrestore can build and load.

Each network module owns its facts (``PRESETS``, ``SIGNATURE``, ``infer_config`` and, where it has
computed buffers, ``is_computed_key``); this module gathers them into one :class:`Arch` per network.
Nothing else in vsrestore imports a network module directly: filters, training and evaluation reach
networks through :func:`get_arch`.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from torch import Tensor, nn

from ..networks import msitf, mstfn, stifn

StateDict = Mapping[str, Tensor]


def _never(key: str) -> bool:
    return False


@dataclass(frozen=True)
class Arch:
    """How to build, recognise and configure one architecture."""

    name: str
    network: type[nn.Module]
    config_type: type
    signature: tuple[str, ...]
    infer_config: Callable[[StateDict], Any]
    presets: Mapping[str, Any] = field(default_factory=dict)
    # Keys a checkpoint may carry that the network recomputes (dropped before a strict load).
    is_computed_key: Callable[[str], bool] = _never

    @property
    def filter_name(self) -> str:
        """The vsrestore filter that runs this architecture (``vsrestore.<name>``)."""
        return f"vsrestore.{self.name}"

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """This arch's config from plain values (e.g. JSON metadata), each checked against its field's type."""
        if not isinstance(values, Mapping):
            raise ValueError(f"{self.name} config must be a mapping of field values, not {type(values).__name__}")
        hints = typing.get_type_hints(self.config_type)
        names = [f.name for f in dataclasses.fields(self.config_type)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{self.name} config has no field(s) {unknown}; its fields: {names}")
        return self._construct({k: _check_field(self.name, k, v, hints[k]) for k, v in values.items()})

    def resolve_config(self, config: Any = None) -> Any:
        """A config object from a preset name, a mapping of field values, a config, or None (the default)."""
        if config is None or isinstance(config, self.config_type):
            return config if config is not None else self._construct({})
        if isinstance(config, str):
            if config not in self.presets:
                raise ValueError(f"{self.name} has no preset {config!r}; presets: {sorted(self.presets)}")
            return self.presets[config]
        if isinstance(config, Mapping):
            return self.config_from_dict(config)
        raise ValueError(
            f"{self.name} config must be a preset name, a mapping or a {self.config_type.__name__}, "
            f"not {type(config).__name__}"
        )

    def build(self, config: Any = None) -> nn.Module:
        """The network of ``config`` (anything :meth:`resolve_config` takes), freshly initialised."""
        return self.network(self.resolve_config(config))

    def _construct(self, values: Mapping[str, Any]) -> Any:
        try:
            return self.config_type(**values)
        except (TypeError, ValueError) as exc:  # the config's own range checks
            raise ValueError(f"{self.name} config: {exc}") from None


def _check_field(arch: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type (lists become tuples) or a ValueError naming the field."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, (list, tuple)) and all(_is(v, item) for v in value):
            return tuple(value)
        raise ValueError(f"{arch} config field {name!r} must be a list of {item.__name__}, not {value!r}")
    if _is(value, hint):
        return value
    raise ValueError(f"{arch} config field {name!r} must be {getattr(hint, '__name__', hint)}, not {value!r}")


def _is(value: Any, kind: Any) -> bool:
    if typing.get_origin(kind) is typing.Literal:
        return isinstance(value, str) and value in typing.get_args(kind)
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    """Add an architecture to the registry (names are unique)."""
    if arch.name in ARCHS:
        raise ValueError(f"architecture {arch.name!r} is registered already")
    ARCHS[arch.name] = arch
    return arch


def _from_module(name: str, module: ModuleType, network: type[nn.Module], config_type: type) -> Arch:
    return Arch(
        name=name, network=network, config_type=config_type, signature=tuple(module.SIGNATURE),
        infer_config=module.infer_config, presets=module.PRESETS,
        is_computed_key=getattr(module, "is_computed_key", _never),
    )


register(_from_module("mstfn", mstfn, mstfn.MSTFN, mstfn.MSTFNConfig))
register(_from_module("stifn", stifn, stifn.STIFN, stifn.STIFNConfig))
register(_from_module("msitf", msitf, msitf.MSITF, msitf.MSITFConfig))


def get_arch(name: str) -> Arch:
    """The registered architecture called ``name``."""
    if not isinstance(name, str) or name.lower() not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, not {name!r}")
    return ARCHS[name.lower()]


def arch_of(module: nn.Module) -> Arch | None:
    """The registered architecture ``module`` is an instance of, if any."""
    return next((a for a in ARCHS.values() if isinstance(module, a.network)), None)


def detect_arch(state_dict: StateDict) -> Arch:
    """Recognise the architecture of a state dict by its keys."""
    for arch in ARCHS.values():
        if all(k in state_dict for k in arch.signature):
            return arch
    sample = ", ".join(list(state_dict)[:5])
    raise ValueError(
        f"cannot recognise the architecture from the checkpoint's keys (first: {sample}); "
        f"pass arch= one of {sorted(ARCHS)}"
    )
