"""STIFN: a 3D-convolutional compressed-video quality-enhancement network.

This is **our re-design under the published contract** of STIFN ("Spatio-Temporal Information
Fusion Network for Compressed Video Quality Enhancement", Huang et al., DCC 2023). The authors
published neither code nor weights nor the layer layout; what is known is the contract they share
with STDF and the parameter budgets, which the two presets here follow:

* input: the Y plane of 7 frames t-3 .. t+3 in [0, 1], stacked as ``(B, 7, H, W)``;
* output: ``(B, 1, H, W)``, a residual added to the centre frame (channel 3);
* spatial and temporal dimensions are fused jointly with 3D convolutions (no optical flow, no
  deformable convolution);
* sizes ``r3`` (about 374K parameters) and ``r3l`` (about 660K parameters).

Layout: the frames become a one-channel 3D volume ``(B, 1, 7, H, W)``; a 3x3x3 Conv3d stem and
ReLU, then residual blocks of two 3x3x3 Conv3d layers (ReLU between, identity skip); the temporal
axis is folded into channels and a 1x1 Conv2d + ReLU fuses it to 2D features; an STDF-R3-like
quality-enhancement head (3x3 Conv2d + ReLU layers, a last 3x3 Conv2d to one channel) predicts the
residual. Only Conv3d, Conv2d, ReLU, reshape, add and clamp are used, so the network exports to
ONNX.

This module has no VapourSynth dependency.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._init import kaiming_convs, scale_residual
from ._keys import count_indices

__all__ = ["PRESETS", "SIGNATURE", "STIFN", "STIFNConfig", "infer_config"]


@dataclass(frozen=True)
class STIFNConfig:
    """Width and depth of an :class:`STIFN`.

    Attributes:
        frames: frames per input window (odd; the centre one is restored). The contract is 7.
        features_3d: channels of the 3D (spatio-temporal) feature volume.
        num_res3d: residual blocks of two 3x3x3 Conv3d layers each.
        features_fused: channels of the 2D features after the temporal fold and 1x1 fusion.
        features_qe: channels of the quality-enhancement head.
        num_qe_mid: 3x3 Conv2d + ReLU layers between the head's input and output convolutions.
        negative_slope: of every activation; 0 is a ReLU. The trained presets use a leaky ReLU:
            with ReLUs, the head of ``lite`` trained at QP 37 died from the output backwards (the
            last layer's features zero on any input after 4,855 steps, the residual 7e-10), so
            the network stayed the identity.
    """

    frames: int = 7
    features_3d: int = 32
    num_res3d: int = 3
    features_fused: int = 64
    features_qe: int = 48
    num_qe_mid: int = 8
    negative_slope: float = 0.0

    def __post_init__(self) -> None:
        if self.frames < 1 or self.frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd number, got {self.frames}")
        for name in ("features_3d", "features_fused", "features_qe"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_res3d < 0 or self.num_qe_mid < 0:
            raise ValueError(
                f"num_res3d and num_qe_mid must be >= 0, got {self.num_res3d} and {self.num_qe_mid}"
            )
        if not 0.0 <= self.negative_slope < 1.0:
            raise ValueError(f"negative_slope must be in [0, 1), got {self.negative_slope}")


# Budgets of the paper: R3 374K and R3L 660K parameters. These presets have 375,777 (+0.5 %) and
# 661,025 (+0.2 %). R3 keeps STDF-R3's head width (48); R3L widens both the 3D and the 2D parts.
# Cost is dominated by the 3D layers (each runs on all 7 frames): about 1.38 M (r3) and 2.74 M
# (r3l) multiply-adds per output pixel. ``lite`` is ours, for training and running on a CPU: a
# narrow 3D part (16 channels, 2 blocks) and a wider 2D head, about 0.6 M multiply-adds per pixel.
PRESETS: dict[str, STIFNConfig] = {
    "tiny": STIFNConfig(features_3d=8, num_res3d=1, features_fused=16, features_qe=16, num_qe_mid=2,
                        negative_slope=0.1),
    "r3": STIFNConfig(
        features_3d=32, num_res3d=3, features_fused=64, features_qe=48, num_qe_mid=8
    ),
    "r3l": STIFNConfig(
        features_3d=40, num_res3d=4, features_fused=64, features_qe=64, num_qe_mid=7
    ),
    "lite": STIFNConfig(
        features_3d=16, num_res3d=2, features_fused=64, features_qe=64, num_qe_mid=8, negative_slope=0.1
    ),
    # ``lite`` with a wider and deeper 3D part (24 channels, 3 blocks: about 1.0 M multiply-adds per
    # pixel), grown from a trained ``lite`` (:meth:`STIFN.load_narrower`) when ``lite`` had flattened
    # at QP 37. It stayed as flat (docs/training.md), so none ships; the recipe keeps it.
    "medium": STIFNConfig(
        features_3d=24, num_res3d=3, features_fused=64, features_qe=64, num_qe_mid=8, negative_slope=0.1
    ),
}


# State-dict keys every STIFN has: how a bare checkpoint is recognised.
SIGNATURE = ("stem.weight", "fusion.weight", "qe_out.weight")


def infer_config(sd: Mapping[str, Tensor]) -> STIFNConfig:
    """The config of a bare state dict, read from its keys and shapes."""

    features_3d = int(sd["stem.weight"].shape[0])
    return STIFNConfig(
        frames=int(sd["fusion.weight"].shape[1]) // features_3d,
        features_3d=features_3d,
        num_res3d=count_indices(sd, r"body\.(\d+)\."),
        features_fused=int(sd["fusion.weight"].shape[0]),
        features_qe=int(sd["qe_in.weight"].shape[0]),
        num_qe_mid=count_indices(sd, r"qe_mid\.(\d+)\."),
    )


def _onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`conv3d` may call oneDNN directly: float32 inference on the CPU, eagerly (not
    while tracing or exporting, which must see a plain ``conv3d``, nor under autocast)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.onnx.is_in_onnx_export()
        and not torch.compiler.is_compiling()
        and not torch.is_autocast_enabled("cpu")  # autocast converts F.conv3d, not this call
    )


def conv3d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    """``F.conv3d`` (stride 1), through oneDNN for float32 inference on the CPU.

    PyTorch sends a Conv3d whose batch x channels x frames x height is at most 20480 to its slow
    reference kernel (a heuristic written for 2-D inputs; STIFN runs batch 1): a 16-channel 3x3x3
    layer on 7 frames of 320x180 took 1061 ms there against 125 ms in oneDNN (61 ms with
    channels_last_3d weights, which oneDNN then also uses for its output). The sums are the same up
    to float rounding.
    """
    if _onednn(x, weight):
        return torch.mkldnn_convolution(x, weight, bias, (padding,) * 3, (1, 1, 1), (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, padding=padding)


def _act(x: Tensor, slope: float) -> Tensor:
    """ReLU, or a leaky ReLU of ``slope``, in place (on fresh convolution outputs only)."""
    return F.leaky_relu(x, slope, inplace=True) if slope else F.relu(x, inplace=True)


class ResBlock3d(nn.Module):
    """Conv3d-ReLU-Conv3d (3x3x3, zero padding in time and space) with an identity skip."""

    def __init__(self, ch: int, slope: float = 0.0) -> None:
        super().__init__()
        self.slope = slope
        self.conv1 = nn.Conv3d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv3d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # In place on fresh convolution outputs (autograd-safe: a convolution's backward needs its
        # input, not its output): two fewer passes over the 7-frame volume per block.
        y = _act(conv3d(x, self.conv1.weight, self.conv1.bias, 1), self.slope)
        return conv3d(y, self.conv2.weight, self.conv2.bias, 1).add_(x)


class STIFN(nn.Module):
    """STIFN (our re-design), ``(B, 7, H, W) -> (B, 1, H, W)`` on the Y plane in [0, 1].

    The output is the centre frame plus a predicted residual, clamped to [0, 1]. With all
    parameters zero the residual is exactly zero, so the network is the identity on the centre
    frame for inputs in [0, 1] (the clamp does not touch them).
    """

    def __init__(self, config: STIFNConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else PRESETS["r3"]
        cfg = self.config
        self.stem = nn.Conv3d(1, cfg.features_3d, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock3d(cfg.features_3d, cfg.negative_slope) for _ in range(cfg.num_res3d)))
        # 1x1 over the folded (channel x time) axis: every output channel sees every frame at the
        # same pixel, which is where the temporal information is finally merged into 2D.
        self.fusion = nn.Conv2d(cfg.features_3d * cfg.frames, cfg.features_fused, 1)
        self.qe_in = nn.Conv2d(cfg.features_fused, cfg.features_qe, 3, padding=1)
        self.qe_mid = nn.ModuleList(
            nn.Conv2d(cfg.features_qe, cfg.features_qe, 3, padding=1) for _ in range(cfg.num_qe_mid)
        )
        self.qe_out = nn.Conv2d(cfg.features_qe, 1, 3, padding=1)

    def output_layer(self) -> nn.Conv2d:
        """The last convolution before the residual: zeroed, the network starts as the identity."""
        return self.qe_out

    def init_weights(self) -> None:
        """Initialise for training from scratch (see :mod:`._init`)."""
        kaiming_convs(self, negative_slope=self.config.negative_slope)
        for block in self.body:
            scale_residual(block.conv2)

    @property
    def receptive_radius(self) -> int:
        """Spatial receptive radius in pixels (17 for ``r3``, 18 for ``r3l``).

        Sum of ``(kernel - 1) // 2`` over the (purely sequential) layer chain: the 3x3x3 stem adds
        1, each 3D residual block 2, the 1x1 fusion 0, and the head 1 + ``num_qe_mid`` + 1. The
        temporal receptive field always covers the whole window (the fold mixes all frames).
        """
        cfg = self.config
        return 1 + 2 * cfg.num_res3d + 1 + cfg.num_qe_mid + 1

    @torch.no_grad()
    def load_narrower(self, sd: Mapping[str, Tensor]) -> None:
        """Load the weights of a narrower or shallower STIFN so that this one computes the same
        function, as a start for training (Net2Net-style growth).

        Each layer's old weights fill its leading output and input channels; the weights from new
        input channels into old output channels are zero, and new output channels keep this
        network's current (training) init, so nothing new reaches the output until it is learnt.
        A 3D residual block beyond the old ones gets a zero last convolution: the identity. The
        head's depth and the window cannot grow (a layer between leaky ReLUs is no identity).

        Raises:
            ValueError: if ``sd`` is not a STIFN this one can grow from.
        """
        try:
            old = infer_config(sd)
        except (KeyError, IndexError) as exc:
            raise ValueError(f"not a STIFN state dict (no {exc})") from None
        cfg = self.config
        fits = (old.frames == cfg.frames and old.num_qe_mid == cfg.num_qe_mid
                and all(getattr(old, f) <= getattr(cfg, f)
                        for f in ("features_3d", "num_res3d", "features_fused", "features_qe")))
        if not fits:
            raise ValueError(f"a STIFN {old} cannot grow into {cfg}: the window and the head's depth "
                             "must be equal, widths and 3D blocks at most this network's")
        mine = self.state_dict()
        unknown = sorted(set(sd) - set(mine))
        if unknown:
            raise ValueError(f"unexpected keys {unknown[:3]}")
        # The fusion reads the folded (channel x time) axis: grow its channels, not the flat fold.
        def unfold(key: str, c: int, w: Tensor) -> Tensor:
            return w.view(w.shape[0], c, cfg.frames) if key == "fusion.weight" else w
        for key, new in mine.items():
            if key not in sd:
                if key.startswith("body.") and ".conv2." in key:
                    new.zero_()
                continue
            src = unfold(key, old.features_3d, sd[key].to(new.dtype))
            dst = unfold(key, cfg.features_3d, new)
            out = src.shape[0]
            dst[:out].zero_()
            dst[(slice(None, out), *(slice(None, n) for n in src.shape[1:]))] = src

    def _fuse_time(self, v: Tensor) -> Tensor:
        """``fusion`` over the folded (channel x time) axis, ``(B, C, T, H, W) -> (B, F, H, W)``.

        Computed as a (T, 1, 1) Conv3d with the same weights viewed as ``(F, C, T, 1, 1)`` (folded
        channel ``c * T + t`` is weight ``[:, c, t]``): the same sums, without copying the volume
        into a ``(B, C*T, H, W)`` layout, which on the CPU cost 20x the convolution itself.
        """
        cfg = self.config
        weight = self.fusion.weight.view(cfg.features_fused, cfg.features_3d, cfg.frames, 1, 1)
        return conv3d(v, weight, self.fusion.bias, 0).squeeze(2)

    def forward(self, x: Tensor, clamp: bool = True) -> Tensor:
        """Restore the centre frame of ``x`` ``(B, frames, H, W)``; ``clamp=False`` (training) keeps
        the gradient of pixels the residual pushes outside [0, 1]."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.frames:
            raise ValueError(
                f"STIFN expects (B, {cfg.frames}, H, W): the Y planes of {cfg.frames} frames "
                f"t-{cfg.frames // 2}..t+{cfg.frames // 2} in [0, 1] stacked on channels; "
                f"got shape {tuple(x.shape)}"
            )
        centre = x[:, cfg.frames // 2 : cfg.frames // 2 + 1]
        slope = cfg.negative_slope
        v = _act(conv3d(x.unsqueeze(1), self.stem.weight, self.stem.bias, 1), slope)  # (B, C, T, H, W)
        if len(self.body) and self.body[0].conv1.weight.is_contiguous(memory_format=torch.channels_last_3d):
            # A one-channel input leaves the stem's output layout ambiguous (NCDHW); the body's
            # channels_last_3d weights would convert it before each of its layers, and each block's
            # skip add would mix the two layouts (in bf16 on the CPU: 207 of 2,450 ms at 640x360).
            v = v.contiguous(memory_format=torch.channels_last_3d)
        v = self.body(v)
        f = _act(self._fuse_time(v), slope)
        f = _act(self.qe_in(f), slope)
        for conv in self.qe_mid:
            f = _act(conv(f), slope)
        out = centre + self.qe_out(f)
        return out.clamp(0.0, 1.0) if clamp else out
