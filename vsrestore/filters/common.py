"""Wiring shared by the filters: model resolution, device placement, argument conversion."""
from __future__ import annotations

import os
from typing import Any

import torch
import vapoursynth as vs
from torch import nn

from .. import models
from ..bridge import parse_tile
from ..models.device import resolve_device, resolve_precision
from .checks import fail


def resolve_model(
    filter_name: str, model: str | os.PathLike[str] | nn.Module | None, arch: str, default: str | None
) -> nn.Module:
    """A network from ``model``: a module, a shipped name, a checkpoint path, or ``default``."""
    if isinstance(model, nn.Module):
        model.vsrestore_meta = getattr(model, "vsrestore_meta", {})
        return model
    if model is None:
        shipped = models.shipped_models()
        if default is None or default not in shipped:
            fail(
                filter_name,
                f"no {arch.upper()} weights are shipped with this version; pass model= a checkpoint path or "
                f"a torch.nn.Module (shipped models: {sorted(shipped) or 'none'})",
            )
        model = default
    if not isinstance(model, (str, os.PathLike)):
        fail(filter_name, f"model must be a model name, a checkpoint path or a torch.nn.Module, not {type(model).__name__}")
    try:
        return models.load(model, arch)
    except ValueError as exc:
        fail(filter_name, f"model: {exc}")


class Runner:
    """A network placed on its device at its precision, called without autograd."""

    def __init__(self, filter_name: str, net: nn.Module, device: Any, precision: str) -> None:
        try:
            self.device = resolve_device(device)
            self.dtype = resolve_precision(precision, self.device)
        except ValueError as exc:
            fail(filter_name, str(exc))
        self.net = net.to(self.device, self.dtype).eval()
        self.net.requires_grad_(False)

    def __call__(self, method: str, *args: torch.Tensor) -> torch.Tensor:
        # no_grad rather than inference_mode: callers post-process results in place.
        with torch.no_grad():
            return getattr(self.net, method)(*(a.to(self.dtype) for a in args)).float()


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
