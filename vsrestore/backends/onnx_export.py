"""ONNX export of vsrestore's networks in the layout vs-mlrt's ``inference()`` takes.

vs-mlrt (``core.ort.Model``, ``core.ov.Model``, ``core.trt.Model`` and ``vsmlrt.inference``) feeds a
network one tensor ``(1, C, H, W)``: the planes of its input clips stacked along channels, float
samples as they are (RGBS or GRAYS, [0, 1]), and makes a clip of the output's 1 or 3 channels at the
input's size (or an integer multiple). The exported graphs follow that:

=========  ==================================================  ==========================================
network    input                                               output
=========  ==================================================  ==========================================
MSTFN      ``(1, 15, H, W)``: frames t-2..t+2, each **R, G, B``  ``(1, 3, H, W)``: frame t, R, G, B
           in [0, 1] at the 16-bit scale the checkpoints        (clamped to [0, 1], same scale)
           expect (an 8-bit v truncated to ``in_bits`` and
           MSB-aligned enters as ``(v << 8) / 65535``)
STIFN      ``(1, 7, H, W)``: the luma of frames t-3..t+3,       ``(1, 1, H, W)``: frame t's luma
           samples / (2^bits - 1)
=========  ==================================================  ==========================================

Height and width are dynamic (vs-mlrt fixes them to its tile size when it loads the model). The
B, G, R order MSTFN's checkpoints read is a permutation inside the graph, so a clip list of RGB
clips feeds it directly.

MSITF is not exported: it turns 4 frames into 7 frames of 4x the size (21 output channels at
another frame rate), which no ``inference()`` call can return as a clip, and its deformable
alignment and shifted-window masks are built from the frame size in Python, so a traced graph only
holds for the traced size.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..models import LoadedModel, load_model

OPSET = 17
EXPORTABLE = ("mstfn", "stifn")


class ExportError(ValueError):
    """A network that cannot be exported, with the reason."""


@dataclass(frozen=True)
class Exported:
    """What :func:`export_onnx` wrote."""

    path: Path
    arch: str
    input_channels: int
    output_channels: int
    description: str


class MSTFNForMLRT(nn.Module):
    """MSTFN with R, G, B frames in and R, G, B out (the network itself reads B, G, R)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        frames = 5
        order = [3 * k + c for k in range(frames) for c in (2, 1, 0)]
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("back", torch.tensor([2, 1, 0]), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.index_select(1, self.order)).index_select(1, self.back)


def wrap_for_mlrt(loaded: LoadedModel) -> tuple[nn.Module, int, int, str]:
    """The module to export for ``loaded``, its input and output channels, and a one-line layout."""
    arch = loaded.info.arch
    net = loaded.network.float().eval()
    if arch == "mstfn":
        bits = loaded.info.in_bits
        contract = f" truncated to {bits} bits" if bits else ""
        return (MSTFNForMLRT(net), 15, 3,
                f"MSTFN: in (1,15,H,W) = RGB of frames t-2..t+2{contract}, MSB-aligned 16-bit / 65535; "
                f"out (1,3,H,W) RGB of frame t, same scale")
    if arch == "stifn":
        frames = net.config.frames
        return (net, frames, 1,
                f"STIFN: in (1,{frames},H,W) = luma of frames t-{frames // 2}..t+{frames // 2} / (2^bits-1); "
                f"out (1,1,H,W) luma of frame t")
    if arch == "msitf":
        raise ExportError(
            "MSITF is not exported: it makes 7 frames of 4x the size from 4 (21 output channels at twice "
            "the frame rate), which vs-mlrt's inference() cannot return as a clip, and its deformable "
            "alignment and window masks are built from the frame size, so a traced graph would hold for "
            "one size only; use vsrestore.msitf"
        )
    raise ExportError(f"cannot export a network of architecture {arch or 'unknown'!r}; "
                      f"exportable: {', '.join(EXPORTABLE)}")


def export_onnx(
    model: str | os.PathLike[str] | nn.Module | LoadedModel, path: str | os.PathLike[str], *,
    opset: int = OPSET, sample_size: tuple[int, int] = (64, 64),
) -> Exported:
    """Write ``model`` (a shipped name, a checkpoint or a module) to ``path`` as ONNX for vs-mlrt.

    The graph is traced at ``sample_size`` (height, width) with dynamic batch, height and width.
    A model of an architecture that cannot be exported raises :class:`ExportError` saying why.
    """
    loaded = model if isinstance(model, LoadedModel) else (
        LoadedModel(model, _info_of(model)) if isinstance(model, nn.Module) else load_model(model)
    )
    module, cin, cout, description = wrap_for_mlrt(loaded)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = sample_size
    sample = torch.rand(1, cin, h, w)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and traced shape checks.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (sample,), str(path), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                          "output": {0: "batch", 2: "height", 3: "width"}},
        )
    _add_metadata(path, {"vsrestore_arch": loaded.info.arch, "vsrestore_model": loaded.info.name,
                         "vsrestore_layout": description})
    return Exported(path, loaded.info.arch, cin, cout, description)


def _info_of(module: nn.Module):
    from ..models import ModelInfo

    return ModelInfo.of_module(module)


def _add_metadata(path: Path, values: dict[str, str]) -> None:
    """Key/value metadata in the ONNX file (skipped when the ``onnx`` package is missing)."""
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))
