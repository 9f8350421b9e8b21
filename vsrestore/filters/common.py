"""Wiring shared by the filters: model resolution, device placement, argument conversion."""
from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, Literal

import torch
import vapoursynth as vs
from torch import nn

from .. import models
from ..bridge import parse_tile
from ..models.device import resolve_device, resolve_precision
from ..models.shipped import ModelEntry, find
from .checks import fail

# The device and precision options every filter takes ("cuda:N" is also accepted as a device).
Device = Literal["auto", "cpu", "cuda"] | str
Precision = Literal["fp32", "fp16", "bf16"]


def resolve_model(
    filter_name: str,
    model: str | os.PathLike[str] | nn.Module | None,
    arch: str,
    default: Callable[[], str],
) -> models.LoadedModel:
    """A network from ``model`` (a module, a model name or a checkpoint path), or the shipped model
    ``default()`` names when ``model`` is None. A model of another architecture is refused with the
    filter it belongs to."""
    if isinstance(model, nn.Module):
        loaded = models.LoadedModel(model, models.ModelInfo.of_module(model))
    else:
        if model is None:
            model = default()
        if not isinstance(model, (str, os.PathLike)):
            fail(filter_name, f"model must be a model name, a checkpoint path or a torch.nn.Module, not {type(model).__name__}")
        try:
            loaded = models.load_model(model)
        except ValueError as exc:
            fail(filter_name, f"model: {exc}")
    if loaded.info.arch and loaded.info.arch != arch:
        fail(filter_name, f"model {loaded.info.name!r} is an {loaded.info.arch.upper()} model: use it with "
                          f"vsrestore.{loaded.info.arch}")
    return loaded


def shipped_default(filter_name: str, arch: str, wanted: str, entries: list[ModelEntry]) -> str:
    """The one shipped model in ``entries`` (those matching the filter's contract), or a clear error."""
    if not entries:
        available = [e.name for e in find(arch)]
        fail(filter_name, f"no shipped {arch.upper()} model for {wanted} (shipped {arch.upper()} models: "
                          f"{', '.join(available) or 'none'}); pass model= a checkpoint path, a model name or a "
                          f"torch.nn.Module")
    return entries[0].name


class Runner:
    """A network placed on its device at its precision, called without autograd.

    The caller's module keeps its device and dtype: when they differ from the requested ones, the
    Runner moves and casts its own copy. Two nodes built from one module (say fp16 and fp32) would
    otherwise move and cast each other's network in place. A module that is already in place is
    shared, not copied (stand-ins may count their calls), and is switched to eval mode with
    gradients off, as before.
    """

    def __init__(
        self, filter_name: str, net: nn.Module | models.LoadedModel, device: Any, precision: str,
        *, name: str | None = None,
    ) -> None:
        """``net`` is a module or a :class:`~vsrestore.models.LoadedModel` (whose name then goes into
        error messages); ``name`` names the model in error messages (its file or shipped name)."""
        try:
            self.device = resolve_device(device)
            self.dtype = resolve_precision(precision, self.device)
        except ValueError as exc:
            fail(filter_name, str(exc))
        if isinstance(net, models.LoadedModel):
            name = name or net.info.name
            net = net.network
        self.filter_name = filter_name
        self.model_name = _model_name(net, name)
        if not _already_placed(net, self.device, self.dtype):
            try:
                net = copy.deepcopy(net)
            except Exception as exc:  # e.g. a module holding a lock or an open file
                fail(
                    filter_name,
                    f"model {self.model_name} is not on {self.device} at {precision} and cannot be copied to "
                    f"get there without changing it ({exc}); pass a module already on that device and dtype",
                )
        self.net = net.to(self.device, self.dtype).eval()
        self.net.requires_grad_(False)

    def __call__(self, method: str, *args: torch.Tensor, frame: int | None = None) -> torch.Tensor:
        """``net.<method>(*args)`` at the Runner's precision, returned as float32.

        ``frame`` (the output frame being rendered) only goes into the error message. A non-finite
        result (NaN or inf: corrupt weights, or an overflow at half precision) raises ``vs.Error``
        instead of reaching the clip as garbage pixels; the check is one reduction per call.
        """
        # no_grad rather than inference_mode: callers post-process results in place.
        with torch.no_grad():
            out = getattr(self.net, method)(*(a.to(self.dtype) for a in args)).float()
            if not bool(torch.isfinite(out).all()):
                where = f" at frame {frame}" if frame is not None else ""
                hint = "" if self.dtype == torch.float32 else " or precision='fp32' (half precision may overflow)"
                fail(
                    self.filter_name,
                    f"model {self.model_name} produced non-finite values (NaN or inf) in {method}(){where}; "
                    f"its weights may hold NaN/inf (a corrupt or diverged checkpoint): check the model{hint}",
                )
        return out


def _model_name(net: nn.Module, name: str | None) -> str:
    """How error messages name a network: its file or shipped name when known, and its class."""
    cls = type(net).__name__
    if name and name != cls:
        return f"{os.path.basename(name)!r} ({cls})"
    return cls


def _already_placed(net: nn.Module, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether every tensor of ``net`` is on ``device`` and every float one at ``dtype`` (a module
    without tensors always is)."""
    for t in (*net.parameters(), *net.buffers()):
        if t.device.type != device.type or (device.index is not None and t.device.index != device.index):
            return False
        if t.is_floating_point() and t.dtype != dtype:
            return False
    return True


def tile_arg(filter_name: str, tile: Any, overlap: Any) -> tuple[tuple[int, int] | None, int]:
    """Validate ``tile`` and ``overlap``."""
    try:
        parsed = parse_tile(tile)
    except ValueError as exc:
        fail(filter_name, str(exc))
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        fail(filter_name, f"overlap must be an integer >= 0; got {overlap!r}")
    return parsed, overlap


def output_format(clip: vs.VideoNode, bits: int) -> vs.VideoFormat:
    """``clip``'s family and subsampling at ``bits`` (32 means float)."""
    fmt = clip.format
    return vs.core.query_video_format(
        fmt.color_family, vs.FLOAT if bits == 32 else vs.INTEGER, bits, fmt.subsampling_w, fmt.subsampling_h
    )
