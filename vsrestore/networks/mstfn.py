"""MSTFN: Multi-stage Spatio-Temporal Fusion Network for video bit-depth enhancement.

Pure-PyTorch re-implementation of the network of "Multi-stage Spatio-Temporal Fusion Network for
Fast and Accurate Video Bit-depth Enhancement" (IEEE Transactions on Multimedia, 2023; code at
TJUMMG/MSTFN).
With the default :class:`MSTFNConfig` the module names reproduce the authors' state-dict keys and
shapes exactly (326 tensors, 4,227,045 parameters), so their published checkpoints load unchanged
once the DataParallel ``module.`` prefix is removed (``vsrestore.models.load`` does it).

Contract of the published checkpoints: five frames t-2 .. t+2, colour in **B, G, R** order, 16-bit
values scaled to [0, 1], stacked on channels as ``(B, 15, H, W)``; the output ``(B, 3, H, W)`` is
frame t, predicted as a residual on the centre input frame (channels 6:9).

Departures from the authors' code, both deliberate:

* The temporal attention of the DSTR block is indexed as ``att[:, i:i+1]``. The authors write
  ``att[:, i]``, which broadcasts a ``(B, H, W)`` map against ``(B, C, H, W)`` features and is only
  right for batch size 1. The two agree at batch size 1.
* The output is clamped to [0, 1] by default. The authors' model returns the unclamped sum (their
  parity output goes slightly outside [0, 1]); pass ``clamp=False`` to get exactly that, e.g. for
  training, where a clamp would stop the gradient of out-of-range pixels.

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

__all__ = ["MSTFN", "MSTFNConfig", "PRESETS", "SIGNATURE", "infer_config"]

# Frames per output and channels per frame are fixed by the architecture: Stage I sees three
# overlapping triples of the five frames, and the residual is added to a 3-channel centre frame.
NUM_FRAMES = 5
FRAME_CHANNELS = 3
CENTRE_INDEX = NUM_FRAMES // 2


@dataclass(frozen=True)
class MSTFNConfig:
    """Width and depth of an :class:`MSTFN`.

    The defaults are the authors' network. Other values give lighter (or heavier) variants with
    the same topology, for training our own weights; only the default loads published checkpoints.

    Attributes:
        features: channels of every feature map (the authors' 64).
        num_rpb: ResPBRes blocks per PSTF stage (``rpb1`` .. ``rpbN``).
        num_tail: reconstruction ResBlocks before the final Conv (``convtail1`` .. ``convtailN``;
            the final Conv is ``convtail{N+1}``).
        aspp_rates: dilation of each ASPP branch; rate 1 means a 1x1 convolution, any other rate a
            3x3 convolution with that dilation (``aspp1`` .. ``asppK``).
        aspp_slope: negative slope of the ASPP activations; 0 is the authors' ReLU. Our presets
            use a leaky ReLU: trained from a start at the mid-rise baseline, every ReLU of both
            ASPPs died (all features zero on any input after 2,250 steps at 4 bits, and in the
            6- and 8-bit runs), leaving a network that adds a constant. Weights carry no trace of
            the slope, so it lives in the model's metadata.
    """

    features: int = 64
    num_rpb: int = 2
    num_tail: int = 3
    aspp_rates: tuple[int, ...] = (1, 2, 4, 8)
    aspp_slope: float = 0.0

    def __post_init__(self) -> None:
        if self.features < 1:
            raise ValueError(f"features must be >= 1, got {self.features}")
        if self.num_rpb < 0 or self.num_tail < 0:
            raise ValueError(
                f"num_rpb and num_tail must be >= 0, got {self.num_rpb} and {self.num_tail}"
            )
        if not self.aspp_rates or any(r < 1 for r in self.aspp_rates):
            raise ValueError(
                f"aspp_rates must be a non-empty tuple of rates >= 1, got {self.aspp_rates}"
            )
        if not 0.0 <= self.aspp_slope < 1.0:
            raise ValueError(f"aspp_slope must be in [0, 1), got {self.aspp_slope}")


# Named configs. ``authors`` loads the published checkpoints; the others are ours, for training on
# a CPU: ``small`` is what the shipped models use (see docs/training.md for why).
PRESETS: dict[str, MSTFNConfig] = {
    "tiny": MSTFNConfig(features=16, num_rpb=1, num_tail=1, aspp_slope=0.1),
    "small": MSTFNConfig(features=32, num_rpb=1, num_tail=2, aspp_slope=0.1),
    "authors": MSTFNConfig(),
}

# State-dict keys every MSTFN has (and no other vsrestore network): how a bare checkpoint is recognised.
SIGNATURE = ("stage1.conv1.conv.0.weight", "stage2.conv1.conv.0.weight", "convtail1.conv.0.weight")


def infer_config(sd: Mapping[str, Tensor]) -> MSTFNConfig:
    """The config of a bare state dict (the authors' checkpoints carry none), read from its keys and shapes."""
    return MSTFNConfig(
        features=int(sd["stage1.conv1.conv.0.weight"].shape[0]),
        num_rpb=count_indices(sd, r"stage1\.rpb(\d+)\."),
        num_tail=count_indices(sd, r"convtail(\d+)\.") - 1,
        # Dilations are not stored in weights: 1x1 branches are rate 1, the rest follow the authors'.
        aspp_rates=tuple(
            1 if sd[f"stage1.aspp.aspp{i}.atrous_convolution.weight"].shape[-1] == 1 else 2 ** (i - 1)
            for i in range(1, count_indices(sd, r"stage1\.aspp\.aspp(\d+)\.") + 1)
        ),
    )


class Conv(nn.Module):
    """3x3 convolution followed by a PReLU with a single learnable slope.

    Kept as ``conv = Sequential(Conv2d, PReLU)`` so the keys are ``conv.0.*`` / ``conv.1.weight``
    as in the authors' checkpoints.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.PReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ResBlock(nn.Module):
    """Conv-PReLU-Conv with an identity skip and no activation after the addition."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.PReLU(), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        # Out of place: the authors' ``res += x`` would break autograd if ``x`` were reused.
        return self.conv(x) + x


class DSTRBlock(nn.Module):
    """Dual-branch spatio-temporal residual block over three frames (the authors' ``pb``).

    Each branch is refined by two Convs; a per-pixel softmax over the three frames weights each
    branch, and a shared fusion of all three (unweighted) branches is added back to each before a
    last Conv and the block's identity skip.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        # Registration order fixes the state-dict order, which must match the authors' file.
        for i in range(3):
            self.add_module(f"conv1_{i}", Conv(ch, ch))
        for i in range(3):
            self.add_module(f"conv2_{i}", Conv(ch, ch))
        for i in range(3):
            self.add_module(f"one{i}", Conv(ch, 1))
        self.middle = Conv(3 * ch, ch)
        for i in range(3):
            self.add_module(f"conv3_{i}", Conv(ch, ch))

    def forward(self, x0: Tensor, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        xs = (x0, x1, x2)
        c2 = [getattr(self, f"conv2_{i}")(getattr(self, f"conv1_{i}")(x)) for i, x in enumerate(xs)]
        logits = torch.cat([getattr(self, f"one{i}")(c) for i, c in enumerate(c2)], dim=1)
        att = F.softmax(logits, dim=1)
        fuse = self.middle(torch.cat(c2, dim=1))
        # att[:, i:i+1] keeps the channel axis, so each sample's weight map broadcasts over its own
        # channels at any batch size.
        out = [
            getattr(self, f"conv3_{i}")(att[:, i : i + 1] * c2[i] + fuse) + xs[i] for i in range(3)
        ]
        return out[0], out[1], out[2]


class ResPBRes(nn.Module):
    """Per-branch ResBlock, a DSTR block, then another per-branch ResBlock."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.res_head1 = ResBlock(ch)
        self.res_head2 = ResBlock(ch)
        self.res_head3 = ResBlock(ch)
        self.pb = DSTRBlock(ch)
        self.res_tail1 = ResBlock(ch)
        self.res_tail2 = ResBlock(ch)
        self.res_tail3 = ResBlock(ch)

    def forward(self, x0: Tensor, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y0, y1, y2 = self.pb(self.res_head1(x0), self.res_head2(x1), self.res_head3(x2))
        return self.res_tail1(y0), self.res_tail2(y1), self.res_tail3(y2)


def _relu(x: Tensor, slope: float) -> Tensor:
    return F.leaky_relu(x, slope) if slope else F.relu(x)


class ASPPBranch(nn.Module):
    """One bias-free atrous convolution followed by ReLU (the authors use ReLU here, not PReLU),
    or a leaky ReLU of ``slope``."""

    def __init__(self, ch: int, rate: int, slope: float = 0.0) -> None:
        super().__init__()
        kernel = 1 if rate == 1 else 3
        padding = 0 if rate == 1 else rate
        self.slope = slope
        self.atrous_convolution = nn.Conv2d(
            ch, ch, kernel, padding=padding, dilation=rate, bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return _relu(self.atrous_convolution(x), self.slope)


class ASPP(nn.Module):
    """Atrous spatial pyramid: parallel dilated branches, concatenated, 1x1-projected, ReLU
    (leaky with ``slope``)."""

    def __init__(self, ch: int, rates: tuple[int, ...], slope: float = 0.0) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.slope = slope
        for k, rate in enumerate(self.rates, start=1):
            self.add_module(f"aspp{k}", ASPPBranch(ch, rate, slope))
        self.conv1 = nn.Conv2d(ch * len(self.rates), ch, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        branches = [getattr(self, f"aspp{k}")(x) for k in range(1, len(self.rates) + 1)]
        return _relu(self.conv1(torch.cat(branches, dim=1)), self.slope)


class PSTF(nn.Module):
    """Progressive spatio-temporal fusion module (the authors' ``generalModule``).

    Maps three inputs of ``in_ch`` channels to one fused ``(B, features, H, W)`` feature map.
    """

    def __init__(self, in_ch: int, config: MSTFNConfig) -> None:
        super().__init__()
        ch = config.features
        self.conv1 = Conv(in_ch, ch)
        self.conv2 = Conv(in_ch, ch)
        self.conv3 = Conv(in_ch, ch)
        self.num_rpb = config.num_rpb
        for k in range(1, config.num_rpb + 1):
            self.add_module(f"rpb{k}", ResPBRes(ch))
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.aspp = ASPP(ch, config.aspp_rates, config.aspp_slope)

    def forward(self, x0: Tensor, x1: Tensor, x2: Tensor) -> Tensor:
        y0, y1, y2 = self.conv1(x0), self.conv2(x1), self.conv3(x2)
        for k in range(1, self.num_rpb + 1):
            y0, y1, y2 = getattr(self, f"rpb{k}")(y0, y1, y2)
        return self.aspp(self.conv(y0 + y1 + y2))


class MSTFN(nn.Module):
    """MSTFN video bit-depth enhancement network, ``(B, 15, H, W) -> (B, 3, H, W)``.

    Input: five frames t-2 .. t+2, each B, G, R in [0, 1], concatenated on channels. Output: frame
    t, residual on the centre input frame, clamped to [0, 1] unless ``clamp=False``.

    The two stages are exposed so that a caller can cache Stage-I features (group ``g1`` of frame t
    is ``g0`` of frame t+1 and ``g2`` of frame t-1)::

        g = model.stage1(f0, f1, f2)          # (B, features, H, W); each f is (B, 3, H, W)
        y = model.fuse(g0, g1, g2, centre=f2)  # (B, 3, H, W)

    ``stage1`` is the shared Stage-I module itself (its name is fixed by the checkpoint keys), so
    calling it is the same as what :meth:`forward` does internally, and
    ``forward(x) == fuse(stage1(f0, f1, f2), stage1(f1, f2, f3), stage1(f2, f3, f4), f2)``.
    """

    def __init__(self, config: MSTFNConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MSTFNConfig()
        ch = self.config.features
        self.stage1 = PSTF(FRAME_CHANNELS, self.config)
        self.stage2 = PSTF(ch, self.config)
        for k in range(1, self.config.num_tail + 1):
            self.add_module(f"convtail{k}", ResBlock(ch))
        # The authors' last layer is a Conv, i.e. it keeps a PReLU on the 3-channel residual.
        self.add_module(f"convtail{self.config.num_tail + 1}", Conv(ch, FRAME_CHANNELS))

    @property
    def receptive_radius(self) -> int:
        """Spatial receptive radius in pixels (59 for the default config).

        Sum of ``(kernel - 1) // 2 * dilation`` over the longest input-to-output path:
        a Conv or plain 3x3 conv adds 1, a ResBlock 2, a DSTR block 4 (conv1, conv2, then ``one``
        or ``middle``, then conv3), so a ResPBRes adds 2 + 4 + 2 = 8; a PSTF stage adds
        1 (head Conv) + 8 per ResPBRes + 1 (``conv``) + the largest ASPP dilation (the 1x1
        projection adds 0). Stage I and Stage II are in series (the three Stage-I groups are
        computed at the same pixels, so they add no offset); the reconstruction adds 2 per
        ResBlock plus 1 for the final Conv. Default: 2 * (1 + 16 + 1 + 8) + 3 * 2 + 1 = 59.
        Tiles need at least this much overlap to match a whole-frame run.
        """
        cfg = self.config
        aspp = max(0 if r == 1 else r for r in cfg.aspp_rates)
        stage = 1 + 8 * cfg.num_rpb + 1 + aspp
        return 2 * stage + 2 * cfg.num_tail + 1

    def output_layer(self) -> nn.Conv2d:
        """The last convolution before the residual: zeroed, the network starts as the identity."""
        return getattr(self, f"convtail{self.config.num_tail + 1}").conv[0]

    def init_weights(self) -> None:
        """Initialise for training from scratch (see :mod:`._init`): PReLU slopes start at 0.25."""
        kaiming_convs(self, negative_slope=0.25)
        for block in self.modules():
            if isinstance(block, ResBlock):
                scale_residual(block.conv[2])
            elif isinstance(block, DSTRBlock):  # each branch's last Conv feeds the block's skip
                for i in range(3):
                    scale_residual(getattr(block, f"conv3_{i}").conv[0])

    def fuse(
        self, g0: Tensor, g1: Tensor, g2: Tensor, centre: Tensor, clamp: bool = True
    ) -> Tensor:
        """Stage II, reconstruction and the residual on ``centre``.

        Args:
            g0, g1, g2: Stage-I features of frames (t-2, t-1, t), (t-1, t, t+1), (t, t+1, t+2).
            centre: the centre input frame ``(B, 3, H, W)``.
            clamp: clamp the result to [0, 1]; ``False`` gives the authors' raw output.
        """
        y = self.stage2(g0, g1, g2)
        for k in range(1, self.config.num_tail + 2):
            y = getattr(self, f"convtail{k}")(y)
        out = y + centre
        return out.clamp(0.0, 1.0) if clamp else out

    def forward(self, x: Tensor, clamp: bool = True) -> Tensor:
        """Restore the centre frame of ``x`` ``(B, 15, H, W)``; see the class docstring."""
        expected = NUM_FRAMES * FRAME_CHANNELS
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(
                f"MSTFN expects (B, {expected}, H, W): {NUM_FRAMES} frames t-2..t+2, each B, G, R "
                f"in [0, 1], concatenated on channels; got shape {tuple(x.shape)}"
            )
        f = [x[:, i * FRAME_CHANNELS : (i + 1) * FRAME_CHANNELS] for i in range(NUM_FRAMES)]
        g0 = self.stage1(f[0], f[1], f[2])
        g1 = self.stage1(f[1], f[2], f[3])
        g2 = self.stage1(f[2], f[3], f[4])
        return self.fuse(g0, g1, g2, f[CENTRE_INDEX], clamp=clamp)

