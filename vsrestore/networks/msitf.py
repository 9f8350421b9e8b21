"""MSITF: space-time video super-resolution (x4 space, x2 time).

Pure-PyTorch re-implementation of the network of "Space-Time Video Super-Resolution via
Multi-Scale Feature Interpolation and Temporal Feature Fusion" (code: carpenterChina/MSITF,
``models/modules/mystvsr07.py``, a fork of Zooming Slow-Mo with a SwinV2 / Swin2SR-style
reconstruction trunk). With the default :class:`MSITFConfig` the module names reproduce the
authors' state-dict keys and shapes exactly (432 entries, 5,585,611 parameters).

Contract: input ``(B, 4, 3, h, w)``, four low-resolution **RGB** frames in [0, 1]; output
``(B, 7, 3, 4h, 4w)``: outputs 0, 2, 4, 6 belong to inputs 0..3, outputs 1, 3, 5 are the
midpoints between them. The network predicts a residual on a fixed space-time interpolation
of the input, its *base* (``MSITFConfig.base``): the authors' is trilinear
(``align_corners=False``, so only outputs 0, 3 and 6 sample the time axis exactly at input
frames, and low-resolution pixels sit at the centres of their 4x4 blocks); ours is Keys cubic in
space on the grid of the training degradation with each input frame at its own position and the
midpoints blended, the classical "bicubic + linear interpolation", so that an untrained network
starts as that baseline. The output is not clamped.

Pipeline: per-frame features (conv + 5 residual blocks, zero-padded right/bottom to a
multiple of the attention window) with an L1/L2/L3 pyramid; a PCD alignment synthesises the
features between each pair of frames; a bidirectional deformable ConvLSTM runs over the 7
feature maps; a per-pixel temporal self-attention mixes the 7 steps; a Swin V2 trunk
(6 residual Swin blocks, 8x8 windows, cosine attention with continuous position bias)
reconstructs each step; two pixel shuffles upscale x4.

Computable buffers (``relative_coords_table``, ``relative_position_index``, ``attn_mask``):
they are non-persistent buffers, computed at construction and never loaded or saved, so
:meth:`~torch.nn.Module.state_dict` lists only the learned tensors (the authors' keys minus
these 30). The authors' state dicts do carry them: :func:`is_computed_key` says which keys
those are, and a caller drops them before a strict load (``vsrestore.models.load`` does;
the window size it builds is read from the stored table's shape). The ``attn_mask`` buffer
has the shape the authors built for their 32x32 training crops; the forward pass never uses
it but builds the shifted-window mask for the actual padded size, cached per size in a
bounded, thread-safe cache, so any input size works from any number of threads.

This module has no VapourSynth dependency.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._keys import count_indices
from .deform_conv import ModulatedDeformConvPack

__all__ = ["MSITF", "MSITFConfig", "PRESETS", "SIGNATURE", "infer_config", "is_computed_key"]

FRAME_CHANNELS = 3
SCALE = 4

Base = Literal["trilinear", "cubic"]
LRGrid = Literal["centre", "corner"]

# The authors clamp the cosine-attention temperature at ln(100), computed as a float32 tensor;
# using its float32 rounding keeps float64 runs bit-compatible with theirs.
_LOGIT_SCALE_MAX = float(torch.tensor(100.0).log())

# Buffers the network computes from its config; the authors' state dicts store them anyway.
COMPUTED_BUFFERS = ("relative_coords_table", "relative_position_index", "attn_mask")


def is_computed_key(key: str) -> bool:
    """True for a state-dict key naming a buffer MSITF computes itself (to drop before loading).

    The authors' checkpoints store ``relative_coords_table``, ``relative_position_index`` and
    ``attn_mask`` for every Swin block; this network recomputes them and holds them as
    non-persistent buffers, so a strict load of such a checkpoint must leave those keys out.
    """
    return key.rsplit(".", 1)[-1] in COMPUTED_BUFFERS


@dataclass(frozen=True)
class MSITFConfig:
    """Width and depth of an :class:`MSITF`.

    The defaults are the authors' network (their names in brackets). Other values give
    lighter or heavier variants with the same topology, for training our own weights.

    Attributes:
        features: channels of every feature map [nf=64]; also the trunk embedding width.
        deform_groups: offset groups of the deformable convolutions [groups=8].
        front_blocks: residual blocks of the per-frame feature extractor [front_RBs=5].
        input_frames: low-resolution frames per window [4]; the output has
            ``2 * input_frames - 1``.
        max_offset: bound of the deformable offsets in pixels, ``max_offset * tanh(.)`` [10].
        temporal_heads: heads of the per-pixel temporal self-attention [8].
        trunk_layers: residual Swin blocks (RSTB) in the trunk [len(depths)=6].
        trunk_blocks: Swin blocks per RSTB, alternately unshifted and shifted [depths[i]=2].
        trunk_heads: heads of the window attention [num_heads[i]=4].
        window_size: side of the attention windows [8].
        mlp_ratio: hidden width of the Swin MLPs relative to ``features`` [2].
        cpb_hidden: hidden width of the continuous-position-bias MLP [512].
        mask_resolution: side of the feature map the authors built their stored
            ``attn_mask`` buffers for [img_size=32]; it only sets that buffer's shape.
        base: the interpolation the network adds its output to ["trilinear"]; ``"cubic"``:
            Keys cubic (a = -0.5) x4 in space, input frames at their own output positions and
            each midpoint the mean of its two neighbours.
        lr_grid: where low-resolution pixel ``i`` sits on the high-resolution grid for the
            ``cubic`` base: ``"centre"`` of its 4x4 block (bicubic down-sampling, and the
            trilinear base), or ``"corner"``, on pixel ``4i`` (BD down-sampling keeps rows and
            columns 0, 4, 8, ...).
    """

    features: int = 64
    deform_groups: int = 8
    front_blocks: int = 5
    input_frames: int = 4
    max_offset: float = 10.0
    temporal_heads: int = 8
    trunk_layers: int = 6
    trunk_blocks: int = 2
    trunk_heads: int = 4
    window_size: int = 8
    mlp_ratio: float = 2.0
    cpb_hidden: int = 512
    mask_resolution: int = 32
    base: Base = "trilinear"
    lr_grid: LRGrid = "centre"

    def __post_init__(self) -> None:
        positive = {
            "features": self.features,
            "deform_groups": self.deform_groups,
            "input_frames": self.input_frames,
            "temporal_heads": self.temporal_heads,
            "trunk_heads": self.trunk_heads,
            "window_size": self.window_size,
            "cpb_hidden": self.cpb_hidden,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.input_frames < 2:
            raise ValueError(f"input_frames must be >= 2, got {self.input_frames}")
        if self.front_blocks < 0 or self.trunk_layers < 0 or self.trunk_blocks < 0:
            raise ValueError("front_blocks, trunk_layers and trunk_blocks must be >= 0")
        for name, heads in (
            ("deform_groups", self.deform_groups),
            ("temporal_heads", self.temporal_heads),
            ("trunk_heads", self.trunk_heads),
        ):
            if self.features % heads:
                raise ValueError(
                    f"features ({self.features}) must be divisible by {name} ({heads})"
                )
        if self.window_size < 2:
            raise ValueError(f"window_size must be >= 2, got {self.window_size}")
        if self.mask_resolution % self.window_size or self.mask_resolution <= self.window_size:
            raise ValueError(
                f"mask_resolution ({self.mask_resolution}) must be a multiple of window_size "
                f"({self.window_size}) larger than it"
            )
        if self.max_offset <= 0 or self.mlp_ratio <= 0:
            raise ValueError("max_offset and mlp_ratio must be > 0")
        if self.base not in get_args(Base):
            raise ValueError(f"base must be one of {get_args(Base)}, got {self.base!r}")
        if self.lr_grid not in get_args(LRGrid):
            raise ValueError(f"lr_grid must be one of {get_args(LRGrid)}, got {self.lr_grid!r}")
        if self.base == "trilinear" and self.lr_grid != "centre":
            raise ValueError("the trilinear base (the authors') samples the centre grid: lr_grid must be 'centre'")

    @property
    def output_frames(self) -> int:
        """Frames produced per window: the inputs and the midpoints between them."""
        return 2 * self.input_frames - 1

    @property
    def pad_multiple(self) -> int:
        """Features are padded to this multiple: whole attention windows and two /2 pyramid
        levels (the authors' 8)."""
        return math.lcm(self.window_size, 4)


def _keys_cubic(distance: float, a: float = -0.5) -> float:
    d = abs(distance)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0


def cubic_phase_kernels(lr_grid: LRGrid, scale: int = SCALE) -> Tensor:
    """``(scale**2, 1, 5, 5)`` float64 weights of a Keys cubic x``scale`` up-sampling as one
    convolution per output phase (then a pixel shuffle): high-resolution pixel ``scale*i + r``
    samples low-resolution position ``i + r/scale`` (corner grid) or ``i + (r + 0.5)/scale - 0.5``
    (centre grid), from the taps ``i-2 .. i+2``."""
    taps = torch.zeros(scale, 5, dtype=torch.float64)
    for r in range(scale):
        offset = r / scale if lr_grid == "corner" else (r + 0.5) / scale - 0.5
        for k in range(-2, 3):
            taps[r, k + 2] = _keys_cubic(k - offset)
    return (taps[:, None, :, None] * taps[None, :, None, :]).reshape(scale * scale, 1, 5, 5)


class CubicBlendBase(nn.Module):
    """The ``cubic`` base: ``(B, N, 3, h, w)`` -> ``(B, 2N-1, 3, 4h, 4w)``, computed in float32
    (under autocast a bf16 base would round the whole picture, not just the residual)."""

    def __init__(self, lr_grid: LRGrid) -> None:
        super().__init__()
        self.register_buffer("kernels", cubic_phase_kernels(lr_grid).float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, ch, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            planes = F.pad(x.float().reshape(b * n * ch, 1, h, w), (2, 2, 2, 2), mode="replicate")
            up = F.pixel_shuffle(F.conv2d(planes, self.kernels), SCALE)
            up = up.view(b, n, ch, SCALE * h, SCALE * w)
            mids = 0.5 * (up[:, :-1] + up[:, 1:])
            seq = torch.stack((up[:, :-1], mids), 2).reshape(b, 2 * (n - 1), ch, SCALE * h, SCALE * w)
            return torch.cat((seq, up[:, -1:]), 1)


def _lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.1) in place: every call site passes a fresh conv output that nothing else
    reads, and in-place leaky ReLU with a positive slope is still differentiable."""
    return F.leaky_relu_(x, 0.1)


# --------------------------------------------------------------------------------------------
# Feature extraction and alignment (Zooming Slow-Mo lineage)
# --------------------------------------------------------------------------------------------


class ResidualBlockNoBN(nn.Module):
    """conv1 -> ReLU -> conv2, plus identity (``ResidualBlock_noBN``)."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class _PyramidMixin(nn.Module):
    """Owns ``fea_L2_conv1/2`` and ``fea_L3_conv1/2`` (names fixed by the checkpoint keys)."""

    def _init_pyramid(self, nf: int) -> None:
        self.fea_L2_conv1 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.fea_L2_conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.fea_L3_conv1 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.fea_L3_conv2 = nn.Conv2d(nf, nf, 3, 1, 1)

    def pyramid(self, l1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(L1, L2, L3) feature levels; L2 and L3 halve the resolution each."""
        l2 = _lrelu(self.fea_L2_conv2(_lrelu(self.fea_L2_conv1(l1))))
        l3 = _lrelu(self.fea_L3_conv2(_lrelu(self.fea_L3_conv1(l2))))
        return l1, l2, l3


Pyramid = tuple[Tensor, Tensor, Tensor]


class PCDAlign(nn.Module):
    """Pyramid, cascading, deformable alignment with three levels (``PCD_Align``).

    Only the first input's features are sampled; the second only steers the offsets (the
    authors' code samples ``(a + a) / 2``). That is the published model, so it is kept.
    """

    def __init__(self, nf: int, groups: int, max_offset: float) -> None:
        super().__init__()

        def dcn() -> ModulatedDeformConvPack:
            return ModulatedDeformConvPack(
                nf, nf, 3, padding=1, deformable_groups=groups, max_offset=max_offset
            )

        self.L3_offset_conv1_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L3_offset_conv2_1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.L3_dcnpack_1 = dcn()
        self.L2_offset_conv1_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L2_offset_conv2_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L2_offset_conv3_1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.L2_dcnpack_1 = dcn()
        self.L2_fea_conv_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L1_offset_conv1_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L1_offset_conv2_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)
        self.L1_offset_conv3_1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.L1_dcnpack_1 = dcn()
        self.L1_fea_conv_1 = nn.Conv2d(2 * nf, nf, 3, 1, 1)

    @staticmethod
    def _up2(x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, a: Pyramid, b: Pyramid) -> Tensor:
        """Features of ``a`` aligned towards ``b``, at L1 resolution."""
        o3 = _lrelu(self.L3_offset_conv1_1(torch.cat((a[2], b[2]), 1)))
        o3 = _lrelu(self.L3_offset_conv2_1(o3))
        f3 = _lrelu(self.L3_dcnpack_1(a[2], o3))

        o2 = _lrelu(self.L2_offset_conv1_1(torch.cat((a[1], b[1]), 1)))
        # Offsets are in pixels of their level, hence x2 when moving one level up.
        o2 = _lrelu(self.L2_offset_conv2_1(torch.cat((o2, 2 * self._up2(o3)), 1)))
        o2 = _lrelu(self.L2_offset_conv3_1(o2))
        f2 = self.L2_dcnpack_1(a[1], o2)
        f2 = _lrelu(self.L2_fea_conv_1(torch.cat((f2, self._up2(f3)), 1)))

        o1 = _lrelu(self.L1_offset_conv1_1(torch.cat((a[0], b[0]), 1)))
        o1 = _lrelu(self.L1_offset_conv2_1(torch.cat((o1, 2 * self._up2(o2)), 1)))
        o1 = _lrelu(self.L1_offset_conv3_1(o1))
        f1 = self.L1_dcnpack_1(a[0], o1)
        return self.L1_fea_conv_1(torch.cat((f1, self._up2(f2)), 1))


class EasyPCD(_PyramidMixin):
    """Own pyramid + PCD alignment + 1x1 fusion, used on (input, state) pairs (``Easy_PCD``)."""

    def __init__(self, nf: int, groups: int, max_offset: float) -> None:
        super().__init__()
        self._init_pyramid(nf)
        self.pcd_align = PCDAlign(nf, groups, max_offset)
        self.fusion = nn.Conv2d(nf, nf, 1)

    def forward(self, x: Tensor, state: Tensor) -> Tensor:
        n = x.shape[0]
        # One pyramid pass over both inputs halves the number of convolution calls.
        levels = self.pyramid(torch.cat((x, state), 0))
        a = (levels[0][:n], levels[1][:n], levels[2][:n])
        b = (levels[0][n:], levels[1][n:], levels[2][n:])
        return self.fusion(self.pcd_align(a, b))


class ConvLSTMCell(nn.Module):
    """Gates i, f, o, g from one 3x3 conv on ``cat(x, h)``."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * nf, 4 * nf, 3, 1, 1)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i, f, o, g = torch.chunk(self.conv(torch.cat((x, h), 1)), 4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next


class DeformableConvLSTM(nn.Module):
    """ConvLSTM whose state is re-aligned to each input by deformable PCD (``forward_net``)."""

    def __init__(self, nf: int, groups: int, max_offset: float) -> None:
        super().__init__()
        # Registered first to keep the authors' key order (cell_list, pcd_h, pcd_c).
        self.cell_list = nn.ModuleList([ConvLSTMCell(nf)])
        self.pcd_h = EasyPCD(nf, groups, max_offset)
        self.pcd_c = EasyPCD(nf, groups, max_offset)

    def forward(self, seq: Tensor) -> Tensor:
        """``seq`` (B, T, C, H, W) -> hidden states (B, T, C, H, W); h and c start at zero."""
        h = seq.new_zeros(seq.shape[:1] + seq.shape[2:])
        c = torch.zeros_like(h)
        cell = self.cell_list[0]
        outputs = []
        for t in range(seq.shape[1]):
            x = seq[:, t]
            h, c = cell(x, self.pcd_h(x, h), self.pcd_c(x, c))
            outputs.append(h)
        return torch.stack(outputs, 1)


class BiDeformableConvLSTM(nn.Module):
    """The same ``forward_net`` forwards and on the reversed sequence, merged by a 1x1 conv."""

    def __init__(self, nf: int, groups: int, max_offset: float) -> None:
        super().__init__()
        self.forward_net = DeformableConvLSTM(nf, groups, max_offset)
        self.conv_1x1 = nn.Conv2d(2 * nf, nf, 1)

    def forward(self, seq: Tensor) -> Tensor:
        b, t, c, h, w = seq.shape
        # Both directions share weights, so they run as one batch of 2B sequences.
        both = self.forward_net(torch.cat((seq, seq.flip(1)), 0))
        fwd, rev = both[:b], both[b:].flip(1)
        merged = self.conv_1x1(torch.cat((fwd, rev), 2).reshape(b * t, 2 * c, h, w))
        return merged.view(b, t, c, h, w)


class TemporalAttention(nn.Module):
    """Multi-head self-attention over the time axis at every pixel (``attn``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, T, C) tokens -> (N, T, C)."""
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, c))


# --------------------------------------------------------------------------------------------
# Swin V2 reconstruction trunk (Swin2SR style, post-norm, cosine attention)
# --------------------------------------------------------------------------------------------


def _relative_coords_table(window: int) -> Tensor:
    """Log-spaced relative coordinates (1, 2w-1, 2w-1, 2) fed to the position-bias MLP.

    Built in float32 step by step like the reference so that the values (and hence float64
    runs after ``.double()``) agree bit for bit.
    """
    coords = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(coords, coords, indexing="ij")).permute(1, 2, 0)
    table = table.contiguous().unsqueeze(0)
    table = table / (window - 1)
    table = table * 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / math.log2(8)


def _relative_position_index(window: int) -> Tensor:
    """(w*w, w*w) index of each token pair's relative offset into the flattened table."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def _shift_window_mask(height: int, width: int, window: int, shift: int) -> Tensor:
    """(nW, w*w, w*w) additive mask (0 / -100) separating regions that the cyclic shift
    brought into one window (the standard Swin mask)."""
    region = torch.zeros(height, width)
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in slices:
        for ws in slices:
            region[hs, ws] = label
            label += 1
    windows = region.view(height // window, window, width // window, window)
    windows = windows.permute(0, 2, 1, 3).reshape(-1, window * window)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Swin V2 window attention: cosine similarity with a learned per-head temperature and a
    continuous position bias ``16 * sigmoid(cpb_mlp(table))``."""

    def __init__(self, dim: int, window: int, num_heads: int, cpb_hidden: int) -> None:
        super().__init__()
        self.dim = dim
        self.window = window
        self.num_heads = num_heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, cpb_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cpb_hidden, num_heads, bias=False),
        )
        # Functions of the window size alone: computed here, never loaded (non-persistent).
        self.register_buffer("relative_coords_table", _relative_coords_table(window), persistent=False)
        self.register_buffer("relative_position_index", _relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> Tensor:
        """(heads, w*w, w*w) additive bias."""
        n = self.window * self.window
        table = self.cpb_mlp(self.relative_coords_table.to(self.q_bias.dtype))
        bias = table.view(-1, self.num_heads)[self.relative_position_index.view(-1)]
        return 16 * torch.sigmoid(bias.view(n, n, self.num_heads).permute(2, 0, 1))

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        """``x`` (windows, w*w, C) -> (windows, w*w, C).

        ``attn_mask`` is the additive logit term, broadcastable to (windows, heads, w*w,
        w*w): the position bias, plus the shifted-window mask for shifted blocks.
        """
        bw, n, c = x.shape
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, qkv_bias).reshape(bw, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Cosine attention: unit q and k, the per-head temperature folded into q, then a
        # fused attention kernel with scale 1 (it never materialises the logits, which are
        # 4x the size of the tokens and made the unfused version memory-bound).
        temperature = torch.clamp(self.logit_scale, max=_LOGIT_SCALE_MAX).exp()
        q = q * (temperature / q.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        k = k * (1.0 / k.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


# Shifted-window attention runs on groups of whole images so that the repeated
# (windows, heads, N, N) bias + mask stays below this many elements (8 MB in float32); large
# frames go one image per call and need no copy at all.
_ATTN_MASK_CHUNK_ELEMENTS = 1 << 21


class SwinBlock(nn.Module):
    """Post-norm Swin V2 block: ``x + norm1(attn(x))``, then ``x + norm2(mlp(x))``."""

    def __init__(self, cfg: MSITFConfig, shift: int) -> None:
        super().__init__()
        dim, window = cfg.features, cfg.window_size
        self.window = window
        self.shift = shift
        if shift > 0:
            # Mirrors the authors' module (their stored values, at their crop size); forward
            # builds the mask for the real size. Never loaded or saved (non-persistent).
            self.register_buffer(
                "attn_mask",
                _shift_window_mask(cfg.mask_resolution, cfg.mask_resolution, window, shift),
                persistent=False,
            )
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, cfg.trunk_heads, cfg.cpb_hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor) -> Tensor:
        """``x`` (B, H*W, C) tokens of (H, W) maps; ``mask`` the (nW, N, N) shifted-window
        mask for (H, W), used by shifted blocks only."""
        h, w = size
        b, _, c = x.shape
        ws = self.window
        y = x.view(b, h, w, c)
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        nwh, nww = h // ws, w // ws
        windows = y.view(b, nwh, ws, nww, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)

        bias = self.attn.position_bias()  # (heads, N, N)
        if self.shift == 0:
            out = self.attn(windows, bias.unsqueeze(0))
        else:
            # The region mask depends on the window's place in the image, so the combined
            # term is (nW, heads, N, N) and is repeated for the images of a chunk; chunks of
            # whole images bound that copy whatever the frame size.
            nw = nwh * nww
            per_image = mask.shape[0] * bias.numel()
            images = max(1, min(b, _ATTN_MASK_CHUNK_ELEMENTS // per_image))
            combined = bias.unsqueeze(0) + mask.unsqueeze(1)
            if images > 1:
                combined = combined.repeat(images, 1, 1, 1)
            parts = []
            for i in range(0, b * nw, images * nw):
                chunk = windows[i : i + images * nw]
                parts.append(self.attn(chunk, combined[: chunk.shape[0]]))
            out = parts[0] if len(parts) == 1 else torch.cat(parts, 0)

        y = out.view(b, nwh, nww, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.norm1(y.reshape(b, h * w, c))
        return x + self.norm2(self.mlp(x))


class BasicLayer(nn.Module):
    """The Swin blocks of one RSTB (``residual_group``), shift 0, w/2, 0, ..."""

    def __init__(self, cfg: MSITFConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(cfg, 0 if i % 2 == 0 else cfg.window_size // 2)
            for i in range(cfg.trunk_blocks)
        )

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor) -> Tensor:
        for blk in self.blocks:
            x = blk(x, size, mask)
        return x


class PatchProj(nn.Module):
    """1x1 conv to tokens, optionally LayerNorm'd (``patch_embed``; patch size 1)."""

    def __init__(self, dim: int, norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 1)
        if norm:
            self.norm = nn.LayerNorm(dim)
        else:
            self.norm = None

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return tokens if self.norm is None else self.norm(tokens)


def _tokens_to_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


class RSTB(nn.Module):
    """Residual Swin block group: blocks -> map -> 3x3 conv -> 1x1 conv -> tokens, + input."""

    def __init__(self, cfg: MSITFConfig) -> None:
        super().__init__()
        self.residual_group = BasicLayer(cfg)
        self.conv = nn.Conv2d(cfg.features, cfg.features, 3, 1, 1)
        self.patch_embed = PatchProj(cfg.features, norm=False)

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor) -> Tensor:
        y = _tokens_to_map(self.residual_group(x, size, mask), size)
        return self.patch_embed(self.conv(y)) + x


class _ShiftMaskCache:
    """Shifted-window masks per (height, width, device, dtype), least recently used dropped.

    VapourSynth renders frames from several threads with one network, so every access holds a
    lock; a mask is built under it too, hence once per key. At most ``max_items`` masks are
    kept: a clip has one frame size, a tiled one up to four (inner, right, bottom and corner
    tiles), so memory stays bounded however many sizes go through over time.
    Copies and pickles (``copy.deepcopy`` of the network, ``torch.save`` of a whole module) start
    empty with a fresh lock, since a lock can be neither copied nor pickled.
    """

    def __init__(self, window: int, max_items: int = 4) -> None:
        self.window = window
        self.max_items = max_items
        self._items: OrderedDict[tuple[int, int, torch.device, torch.dtype], Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getstate__(self) -> dict[str, Any]:
        return {"window": self.window, "max_items": self.max_items}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["window"], state["max_items"])

    def get(self, height: int, width: int, ref: Tensor) -> Tensor:
        """The mask for an (height, width) map on ``ref``'s device and dtype (built on first use)."""
        key = (height, width, ref.device, ref.dtype)
        with self._lock:
            mask = self._items.get(key)
            if mask is None:
                mask = _shift_window_mask(height, width, self.window, self.window // 2)
                mask = mask.to(ref.device, ref.dtype)
                self._items[key] = mask
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
            return mask


class SwinTrunk(nn.Module):
    """Swin2SR body without upsampler (``recon_trunk``): ``conv_after_body(features(conv_first(x)))
    + conv_first(x)``, on maps whose sides are multiples of the window."""

    def __init__(self, cfg: MSITFConfig) -> None:
        super().__init__()
        nf = cfg.features
        self.window = cfg.window_size
        self.conv_first = nn.Conv2d(nf, nf, 3, 1, 1)
        self.patch_embed = PatchProj(nf, norm=True)
        self.layers = nn.ModuleList(RSTB(cfg) for _ in range(cfg.trunk_layers))
        self.norm = nn.LayerNorm(nf)
        self.conv_after_body = nn.Conv2d(nf, nf, 3, 1, 1)
        # Filled during forward, possibly from several threads at once (thread-safe, bounded).
        self._mask_cache = _ShiftMaskCache(self.window)

    def shift_mask(self, height: int, width: int, ref: Tensor) -> Tensor:
        """Shifted-window mask for an (height, width) map, cached per size, device and dtype
        (every shifted block of the trunk shares it; safe to call from several threads)."""
        return self._mask_cache.get(height, width, ref)

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[2], x.shape[3])
        if size[0] % self.window or size[1] % self.window:
            raise ValueError(f"trunk input {size} is not a multiple of the window {self.window}")
        mask = self.shift_mask(size[0], size[1], x)
        x = self.conv_first(x)
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, size, mask)
        body = _tokens_to_map(self.norm(tokens), size)
        return self.conv_after_body(body) + x


# --------------------------------------------------------------------------------------------
# Whole network
# --------------------------------------------------------------------------------------------


class MSITF(_PyramidMixin):
    """MSITF space-time super-resolution network (see the module docstring).

    ``forward(x)``: ``(B, 4, 3, h, w)`` RGB in [0, 1] -> ``(B, 7, 3, 4h, 4w)``, any h, w.
    """

    def __init__(self, config: MSITFConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MSITFConfig()
        cfg = self.config
        nf = cfg.features
        self.conv_first = nn.Conv2d(FRAME_CHANNELS, nf, 3, 1, 1)
        self.feature_extraction = nn.Sequential(
            *(ResidualBlockNoBN(nf) for _ in range(cfg.front_blocks))
        )
        self._init_pyramid(nf)
        self.pcd_align = PCDAlign(nf, cfg.deform_groups, cfg.max_offset)
        self.fusion = nn.Conv2d(nf, nf, 1)
        self.ConvBLSTM = BiDeformableConvLSTM(nf, cfg.deform_groups, cfg.max_offset)
        self.attn = TemporalAttention(nf, cfg.temporal_heads)
        self.recon_trunk = SwinTrunk(cfg)
        self.upconv1 = nn.Conv2d(nf, 4 * nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, 4 * nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, FRAME_CHANNELS, 3, 1, 1)
        self.cubic_base = CubicBlendBase(cfg.lr_grid) if cfg.base == "cubic" else None

    @property
    def receptive_radius(self) -> int:
        """Suggested tile overlap in input (low-resolution) pixels: 48 for the default config.

        There is no small exact bound: the bidirectional ConvLSTM carries information across
        all 7 steps and each step re-aligns through its own PCD pyramid, whose deformable
        offsets reach ``max_offset`` pixels at every level (10 px at L1, 20 at L2, 40 at L3 in
        L1 pixels), and the 6 RSTBs each span a window plus its shifted half (about 12 px) on
        top; the strict dependency radius is several hundred pixels, i.e. the whole frame for
        practical sizes, so no overlap makes tiles bit-identical to a whole-frame run. The
        value returned covers the largest single deformable displacement (``max_offset`` at
        the quarter-resolution level, 40 px) plus one attention window (8 px), rounded to a
        multiple of the window so a tile grid can keep the window partition aligned. Trained
        offsets follow the motion and attention concentrates on nearby tokens, so this is a
        practical rather than a guaranteed overlap.
        """
        cfg = self.config
        reach = math.ceil(cfg.max_offset * 4) + cfg.window_size
        return math.ceil(reach / cfg.window_size) * cfg.window_size

    def _check_input(self, x: Tensor) -> None:
        n = self.config.input_frames
        if x.dim() != 5 or x.shape[1] != n or x.shape[2] != FRAME_CHANNELS:
            raise ValueError(
                f"MSITF expects (B, {n}, {FRAME_CHANNELS}, h, w): {n} low-resolution RGB frames "
                f"in [0, 1], frame-major; got shape {tuple(x.shape)}"
            )
        if x.shape[3] < 1 or x.shape[4] < 1:
            raise ValueError(f"MSITF got an empty frame: shape {tuple(x.shape)}")

    def forward(self, x: Tensor, clamp: bool = False) -> Tensor:
        """``(B, N, 3, h, w)`` -> ``(B, 2N-1, 3, 4h, 4w)`` (N = ``config.input_frames``); unclamped
        like the authors' unless ``clamp``."""
        self._check_input(x)
        cfg = self.config
        b, n, ch, h, w = x.shape
        t = cfg.output_frames
        nf = cfg.features

        up = self.base(x)

        l1 = _lrelu(self.conv_first(x.reshape(b * n, ch, h, w)))
        m = cfg.pad_multiple
        hp, wp = -(-h // m) * m, -(-w // m) * m
        l1 = F.pad(l1, (0, wp - w, 0, hp - h))
        levels = self.pyramid(self.feature_extraction(l1))
        lv = [f.view(b, n, nf, f.shape[-2], f.shape[-1]) for f in levels]

        # Features between frames k and k+1 for all k at once (one batch of B*(N-1) pairs).
        def pairs(sel: slice) -> Pyramid:
            return tuple(f[:, sel].reshape(b * (n - 1), nf, f.shape[-2], f.shape[-1]) for f in lv)

        mid = self.fusion(self.pcd_align(pairs(slice(0, n - 1)), pairs(slice(1, n))))
        mid = mid.view(b, n - 1, nf, hp, wp)
        # Sequence F0, I0, F1, I1, ..., F_{N-1}.
        seq = torch.stack((lv[0][:, :-1], mid), 2).reshape(b, 2 * (n - 1), nf, hp, wp)
        seq = torch.cat((seq, lv[0][:, -1:]), 1)

        feats = self.ConvBLSTM(seq)  # (B, T, C, Hp, Wp)
        tokens = feats.permute(0, 3, 4, 1, 2).reshape(b * hp * wp, t, nf)
        attn = self.attn(tokens).view(b, hp, wp, t, nf).permute(0, 3, 4, 1, 2)
        feats = (feats + attn).reshape(b * t, nf, hp, wp)

        feats = self.recon_trunk(feats)[:, :, :h, :w]
        # The x4 stages hold 64-256 channels at up to 16x the pixels; one frame at a time
        # keeps those maps from dwarfing the rest of the network's memory.
        out = torch.cat([self.upsample(f) for f in feats.split(1, 0)], 0)
        out = out.view(b, t, FRAME_CHANNELS, SCALE * h, SCALE * w) + up
        return out.clamp(0.0, 1.0) if clamp else out

    def base(self, x: Tensor) -> Tensor:
        """The interpolation the network's output is a residual on (see ``MSITFConfig.base``)."""
        if self.cubic_base is not None:
            return self.cubic_base(x)
        # trilinear over (time, y, x), align_corners=False like the authors
        t, h, w = self.config.output_frames, x.shape[-2], x.shape[-1]
        return F.interpolate(
            x.transpose(1, 2), size=(t, SCALE * h, SCALE * w), mode="trilinear", align_corners=False
        ).transpose(1, 2)

    def upsample(self, feats: Tensor) -> Tensor:
        """Reconstruction head: (N, C, h, w) features -> (N, 3, 4h, 4w) residual."""
        out = _lrelu(F.pixel_shuffle(self.upconv1(feats), 2))
        out = _lrelu(F.pixel_shuffle(self.upconv2(out), 2))
        return self.conv_last(_lrelu(self.HRconv(out)))

    def output_layer(self) -> nn.Conv2d:
        """The last convolution before the residual: zeroed, the network starts as its base."""
        return self.conv_last

    def init_weights(self) -> None:
        """Initialise for training from scratch: the module defaults, as the authors train it (its
        deformable convolutions start with zero offsets, its attention layers with their own init)."""


# --------------------------------------------------------------------------------------------------
# Registry facts (gathered by vsrestore.models.registry)

# Named configs. ``authors`` loads the published checkpoints; the others are ours, for a CPU: they
# start from the cubic base on the BD grid (training on bicubic down-sampling moves it to the
# centre grid): the authors' trilinear base, 1.5 high-resolution pixels off BD's grid, scores
# 21.30 dB on Cars' first 7 frames against 23.31 for this one, and a run on it stayed below
# bicubic after 3,000 steps.
_OURS = {"base": "cubic", "lr_grid": "corner"}
PRESETS: dict[str, MSITFConfig] = {
    "tiny": MSITFConfig(features=16, deform_groups=2, front_blocks=1, temporal_heads=2, trunk_layers=1,
                        trunk_blocks=2, trunk_heads=2, cpb_hidden=64, **_OURS),
    "small": MSITFConfig(features=32, deform_groups=4, front_blocks=2, temporal_heads=4, trunk_layers=2,
                         trunk_blocks=2, trunk_heads=4, cpb_hidden=128, **_OURS),
    "authors": MSITFConfig(),
}

# State-dict keys every MSITF has: how a bare checkpoint is recognised.
SIGNATURE = ("conv_first.weight", "pcd_align.L1_dcnpack_1.conv_offset.weight", "recon_trunk.conv_first.weight")


def infer_config(sd: Mapping[str, Tensor]) -> MSITFConfig:
    """The config of a bare state dict, read from its keys and shapes (the authors' defaults fill in
    what no weight stores)."""
    features = int(sd["conv_first.weight"].shape[0])
    block = "recon_trunk.layers.0.residual_group.blocks.0."
    table = sd.get(block + "attn.relative_coords_table")
    mask = sd.get(block.replace("blocks.0", "blocks.1") + "attn_mask")
    defaults = MSITFConfig()
    return MSITFConfig(
        features=features,
        deform_groups=int(sd["pcd_align.L3_dcnpack_1.conv_offset.weight"].shape[0]) // 27,
        front_blocks=count_indices(sd, r"feature_extraction\.(\d+)\."),
        trunk_layers=count_indices(sd, r"recon_trunk\.layers\.(\d+)\."),
        trunk_blocks=count_indices(sd, r"recon_trunk\.layers\.0\.residual_group\.blocks\.(\d+)\."),
        trunk_heads=int(sd[block + "attn.cpb_mlp.2.weight"].shape[0]),
        window_size=(int(table.shape[1]) + 1) // 2 if table is not None else defaults.window_size,
        mlp_ratio=float(sd[block + "mlp.fc1.weight"].shape[0]) / features,
        cpb_hidden=int(sd[block + "attn.cpb_mlp.0.weight"].shape[0]),
        temporal_heads=defaults.temporal_heads,
        mask_resolution=(
            int(math.isqrt(mask.shape[0] * mask.shape[1])) if mask is not None else defaults.mask_resolution
        ),
    )
