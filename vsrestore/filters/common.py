"""Wiring shared by the filters: model resolution, device placement, argument conversion."""
from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Literal

import torch
import vapoursynth as vs
from torch import nn

from .. import models
from ..bridge import parse_tile
from ..models.device import (
    ThreadCountInvariantConvs, fp32_methods, resolve_device, resolve_precision, stream_threads, to_channels_last,
)
from ..models.shipped import ModelEntry, find
from .checks import fail

# The device and precision options every filter takes ("cuda:N" is also accepted as a device).
Device = Literal["auto", "cpu", "cuda"] | str
Precision = Literal["auto", "fp32", "fp16", "bf16"]
Backend = Literal["torch", "openvino"]
BACKENDS = ("torch", "openvino")

# Architectures that run channels_last (channels_last_3d for Conv3d) on the CPU, measured per network
# (the network alone, NCHW and channels_last interleaved, CPU seconds): STIFN, whose Conv3d layers
# oneDNN runs about 2x faster channels_last_3d; MSTFN, 0.71x on one thread and 0.63x on two at
# 640x360 (tiny preset). Not MSITF: 1.05x slower at 96x64 and 128x72 on one thread (its
# concatenations, grid_sample and attention reshapes copy between layouts).
CHANNELS_LAST_ARCHS = frozenset({"stifn", "mstfn"})


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
    gradients off, as before. On the CPU the networks of :data:`CHANNELS_LAST_ARCHS` run
    channels_last: a shared module's weights are laid out so in place (same values, dtype and
    device), and 4-D inputs are passed channels_last.
    """

    def __init__(
        self, filter_name: str, net: nn.Module | models.LoadedModel, device: Any, precision: str,
        *, name: str | None = None, num_streams: int = 1, backend: str = "torch",
    ) -> None:
        """``net`` is a module or a :class:`~vsrestore.models.LoadedModel` (whose name then goes into
        error messages); ``name`` names the model in error messages (its file or shipped name).

        ``precision="auto"`` resolves for the network's architecture (see
        :func:`~vsrestore.models.device.auto_precision`; the methods of
        :func:`~vsrestore.models.device.fp32_methods` then stay float32); a module of no registered architecture counts
        as MSTFN-like (fp32). On the CPU each call runs on ``stream_threads(num_streams)`` torch
        threads, so that ``num_streams`` concurrent calls share the cores instead of oversubscribing
        them. ``backend="openvino"`` compiles the network with OpenVINO (CPU only; see
        :mod:`vsrestore.backends.openvino`).
        """
        if isinstance(net, models.LoadedModel):
            name = name or net.info.name
            arch = net.info.arch or _arch_name(net.network)
            net = net.network
        else:
            arch = _arch_name(net)
        try:
            self.device = resolve_device(device)
            self.dtype = resolve_precision(precision, self.device, arch or None)
        except ValueError as exc:
            fail(filter_name, str(exc))
        if backend not in BACKENDS:
            fail(filter_name, f"backend must be one of {', '.join(repr(b) for b in BACKENDS)}; got {backend!r}")
        self.filter_name = filter_name
        self.model_name = _model_name(net, name)
        self.arch = arch
        if backend == "openvino":
            backend = _openvino_fallback(filter_name, arch)
        self.fp32_methods = fp32_methods(arch, precision) if self.dtype != torch.float32 else frozenset()
        self.threads = stream_threads(num_streams) if self.device.type == "cpu" else None
        # Registered networks only: a stand-in module is run as it is (and shared, see above).
        self.channels_last = self.device.type == "cpu" and arch in CHANNELS_LAST_ARCHS and backend == "torch"
        self.num_streams = num_streams
        # Weights stay float32 at every precision: bf16/fp16 run as autocast (see __call__), and
        # OpenVINO converts from float32 weights, taking the precision as its compile hint. A module
        # already on the device in float32 is shared (stand-ins may count their calls);
        # channels_last then changes its weights' memory layout in place, never their values.
        if not _already_placed(net, self.device, torch.float32):
            try:
                net = copy.deepcopy(net)
            except Exception as exc:  # e.g. a module holding a lock or an open file
                fail(
                    filter_name,
                    f"model {self.model_name} is not on {self.device} in float32 and cannot be copied to "
                    f"get there without changing it ({exc}); pass a module already on that device in float32",
                )
        self.net = net.to(self.device, torch.float32).eval()
        self.net.requires_grad_(False)
        if self.channels_last:
            to_channels_last(self.net)
        self.backend = backend
        self._compiled = None
        if backend == "openvino":
            self._compiled = _openvino_network(self, precision)

    def __call__(self, method: str, *args: torch.Tensor, frame: int | None = None) -> torch.Tensor:
        """``net.<method>(*args)`` at the Runner's precision, returned as float32.

        bf16 and fp16 run as autocast, the mixed precision the networks trained in: convolutions and
        matrix products in half precision, everything else (the residual added to the input frame,
        softmax, normalisation) in float32 on float32 inputs. Casting the whole network and its
        input instead rounds the restored frame itself to 8 significant bits: a shipped MSTFN lost
        0.24 dB PSNR-RGB that way, and nothing measurable under autocast.

        ``frame`` (the output frame being rendered) only goes into the error message. A non-finite
        result (NaN or inf: corrupt weights, or an overflow at half precision) raises ``vs.Error``
        instead of reaching the clip as garbage pixels; the check is one reduction per call.
        """
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # this thread's OpenMP team (see stream_threads)
        # no_grad rather than inference_mode: callers post-process results in place.
        with torch.no_grad():
            if self._compiled is not None:
                out = self._compiled(method, *args)
            else:
                inputs = [a.to(torch.float32) for a in args]
                if self.channels_last:
                    inputs = [a.contiguous(memory_format=torch.channels_last) if a.dim() == 4 else a for a in inputs]
                half = self.dtype != torch.float32 and method not in self.fp32_methods
                # Under autocast every convolution is bf16/fp16 and takes one path at any thread count.
                invariant = ThreadCountInvariantConvs() if self.device.type == "cpu" and not half else nullcontext()
                with invariant, torch.autocast(self.device.type, dtype=self.dtype if half else None, enabled=half):
                    out = getattr(self.net, method)(*inputs).float()
            if not bool(torch.isfinite(out).all()):
                where = f" at frame {frame}" if frame is not None else ""
                hint = "" if self.dtype == torch.float32 else " or precision='fp32' (half precision may overflow)"
                fail(
                    self.filter_name,
                    f"model {self.model_name} produced non-finite values (NaN or inf) in {method}(){where}; "
                    f"its weights may hold NaN/inf (a corrupt or diverged checkpoint): check the model{hint}",
                )
        return out


def _arch_name(net: nn.Module) -> str:
    """The registered architecture ``net`` is an instance of, or "" (a stand-in)."""
    spec = models.arch_of(net)
    return spec.name if spec is not None else ""


def _openvino_fallback(filter_name: str, arch: str) -> str:
    """``"torch"`` (with a warning saying why) for a network that does not convert, else ``"openvino"``."""
    from ..backends.openvino import UNSUPPORTED

    if arch in UNSUPPORTED:
        warnings.warn(f"vsrestore.{filter_name}: backend='openvino': {UNSUPPORTED[arch]}; running on torch",
                      stacklevel=4)
        return "torch"
    return "openvino"


def _openvino_network(runner: Runner, precision: str) -> Any:
    """The Runner's network compiled with OpenVINO, or a clear ``vs.Error``."""
    from ..backends import openvino as ov_backend

    try:
        return ov_backend.OpenVINONetwork(runner.net, runner.arch, runner.device, runner.dtype,
                                          threads=runner.threads or 1, num_streams=runner.num_streams,
                                          fp32_methods=runner.fp32_methods)
    except ov_backend.BackendError as exc:
        fail(runner.filter_name, f"backend='openvino': {exc}")


def _model_name(net: nn.Module, name: str | None) -> str:
    """How error messages name a network: its file or shipped name when known, and its class."""
    cls = type(net).__name__
    if name and name != cls:
        return f"{os.path.basename(name)!r} ({cls})"
    return cls


def _already_placed(net: nn.Module, device: torch.device, dtype: torch.dtype, channels_last: bool = False) -> bool:
    """Whether every tensor of ``net`` is on ``device`` and every float one at ``dtype`` (a module
    without tensors always is), and with ``channels_last`` every 4-D/5-D one laid out so."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    for t in (*net.parameters(), *net.buffers()):
        if t.device.type != device.type or (device.index is not None and t.device.index != device.index):
            return False
        if t.is_floating_point() and t.dtype != dtype:
            return False
        if channels_last and t.dim() in formats and not t.is_contiguous(memory_format=formats[t.dim()]):
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
