"""Modulated deformable convolution (DCNv2) in pure PyTorch.

`modulated_deform_conv2d` reproduces the semantics of ``torchvision.ops.deform_conv2d``
without torchvision, mmcv or compiled extensions, so the networks that use it run
anywhere PyTorch runs (CPU, CUDA, any floating dtype).

Semantics (identical to torchvision):

* ``offset`` has ``2 * offset_groups * kh * kw`` channels laid out as
  ``[group][tap][dy, dx]`` where ``tap = i * kw + j`` walks the kernel row-major;
  the number of offset groups is ``offset.shape[1] // (2 * kh * kw)``.
* ``mask`` has ``offset_groups * kh * kw`` channels laid out as ``[group][tap]``.
* The sample of tap ``(i, j)`` for output pixel ``(y, x)`` is taken at
  ``(y * stride - pad + i * dil + dy, x * stride - pad + j * dil + dx)`` by bilinear
  interpolation in which each of the four neighbouring pixels contributes only when it
  lies inside the image (pixels outside count as zero).

Implementation: the four-corner bilinear rule with per-corner zeroing is exactly what
``F.grid_sample(mode="bilinear", padding_mode="zeros")`` computes, so the sampling
positions of a band of output rows (all groups, taps and pixels of the band) are fed to
one ``grid_sample`` call, the input viewed as ``B * offset_groups`` images of
``C / offset_groups`` channels. Its output, modulated by the mask, already has the memory
layout of the im2col column matrix ``(B, C * kh * kw, rows * Wo)``; the band's convolution is
one ``columns^T @ weight^T`` product with the bias added in the same call (``addmm``), written
straight into its rows of a ``(B, Ho, Wo, O)`` buffer (no concatenation), which is returned as a
channels_last ``(B, O, Ho, Wo)`` tensor. Bands keep the column matrix at a few MB (see
``_CHUNK_BYTES``). Half-precision inputs are sampled in float32 (normalised grid coordinates need
the bits).

Cost on CPU (float32, 64 -> 64 channels, 3x3, 8 groups, 1 thread, ``scripts/bench_deform_conv.py``
with the previous implementation interleaved): 3.4x a dense ``F.conv2d`` at 180x144 (3.8x before)
and 3.6x at 90x72 (3.8x). ``grid_sample`` is most of it (141 of 220 ms in a 1-thread profile at
180x144, the matrix product 55 ms, which this orientation runs 10-20 % faster). One gather for all
taps (``F.embedding_bag`` over a channels-last, zero-bordered table with per-sample bilinear x mask
weights) was measured 2x slower in eager PyTorch: the per-sample index arithmetic, a dozen passes
over G x taps x pixels elements, costs more than the gather itself; it would need a fused kernel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["modulated_deform_conv2d", "ModulatedDeformConvPack"]

_IntPair = int | tuple[int, int]

# Target size of one block of the im2col matrix (see the chunking note in the function).
# 8 MiB measured best on CPU (2-core VM, 64 channels, 3x3); GPUs only need memory bounded.
_CHUNK_BYTES = 1 << 23
_CHUNK_BYTES_GPU = 1 << 28


def _pair(value: _IntPair) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


def modulated_deform_conv2d(
    input: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _IntPair = 1,
    padding: _IntPair = 1,
    dilation: _IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """Deformable convolution with optional modulation (DCNv2), torchvision semantics.

    Args:
        input: ``(B, C, H, W)``.
        offset: ``(B, 2 * G * kh * kw, Ho, Wo)``, ``G`` offset (deformable) groups
            dividing ``C``; channel layout ``[G][kh * kw][dy, dx]``.
        mask: ``(B, G * kh * kw, Ho, Wo)`` modulation scalars or ``None`` (all ones,
            i.e. DCNv1).
        weight: ``(O, C // groups, kh, kw)``.
        bias: ``(O,)`` or ``None``.
        stride, padding, dilation: as for ``F.conv2d``.
        groups: ordinary convolution groups (splitting the weight), as for ``F.conv2d``.

    Returns:
        ``(B, O, Ho, Wo)``.
    """
    if input.dim() != 4:
        raise ValueError(f"input must be (B, C, H, W), got shape {tuple(input.shape)}")
    b, c, h, w = input.shape
    out_ch, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    taps = kh * kw
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if c_per_group * groups != c or out_ch % groups != 0:
        raise ValueError(
            f"weight {tuple(weight.shape)} with groups={groups} does not fit {c} input channels"
        )
    if offset.dim() != 4 or offset.shape[1] % (2 * taps) != 0:
        raise ValueError(
            f"offset must be (B, 2*G*{kh}*{kw}, Ho, Wo), got shape {tuple(offset.shape)}"
        )
    n_off = offset.shape[1] // (2 * taps)
    if n_off == 0 or c % n_off != 0:
        raise ValueError(f"{n_off} offset groups do not divide {c} input channels")
    if tuple(offset.shape) != (b, 2 * n_off * taps, ho, wo):
        raise ValueError(
            f"offset shape {tuple(offset.shape)} != expected {(b, 2 * n_off * taps, ho, wo)}"
        )
    if mask is not None and tuple(mask.shape) != (b, n_off * taps, ho, wo):
        raise ValueError(f"mask shape {tuple(mask.shape)} != expected {(b, n_off * taps, ho, wo)}")

    # Sampling in half precision would quantise the normalised grid coordinates far too
    # coarsely (a few hundredths of a pixel at typical widths), so sample in float32.
    sample_dtype = (
        torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    )
    dev = input.device
    cg_off = c // n_off

    off = offset.view(b, n_off, taps, 2, ho, wo)
    msk = None if mask is None else mask.view(b, n_off, 1, taps, ho, wo)
    src = input.to(sample_dtype).reshape(b * n_off, cg_off, h, w)
    og = out_ch // groups
    # (groups, C/groups * taps, O/groups): each chunk is one (pixels x K) @ (K x O) product whose
    # result is already the channels-last output rows (MKL ran this orientation ~15 % faster than
    # weight @ columns), with the bias added by the same call.
    w_t = weight.reshape(groups, og, c_per_group * taps).transpose(1, 2).contiguous()
    # grid_sample (align_corners=False) reads normalised g at pixel ((g + 1) * size - 1) / 2,
    # i.e. pixel p is g = (2p + 1) / size - 1 = base + (2 / size) * offset, where base is the
    # normalised undeformed tap position; precomputing base leaves one fused pass per axis.
    tap_y = (torch.arange(kh, device=dev, dtype=sample_dtype) * dh).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev, dtype=sample_dtype) * dw).repeat(kh)
    col_x = torch.arange(wo, device=dev, dtype=sample_dtype) * sw - pw
    row_y = torch.arange(ho, device=dev, dtype=sample_dtype) * sh - ph
    norm_x = ((col_x.view(1, wo) + tap_x.view(taps, 1)) * 2.0 + 1.0) / w - 1.0
    norm_y = ((row_y.view(1, ho) + tap_y.view(taps, 1)) * 2.0 + 1.0) / h - 1.0
    norm_x = norm_x.view(taps, 1, wo)
    norm_y = norm_y.view(taps, ho, 1)
    # In-place and out= shortcuts are only taken when no gradient flows (autograd needs the
    # unmodulated samples to differentiate w.r.t. the mask, and out= is not differentiable).
    inplace_ok = not (
        torch.is_grad_enabled()
        and (
            input.requires_grad
            or offset.requires_grad
            or (mask is not None and mask.requires_grad)
        )
    )

    # The column matrix is C*taps times larger than the input; building it for a few rows
    # at a time keeps it cache-resident and below the allocator's mmap threshold (fresh
    # multi-10-MB buffers cost more in page faults than the sampling itself).
    row_bytes = c * taps * wo * torch.empty((), dtype=sample_dtype).element_size() * b
    budget = _CHUNK_BYTES if dev.type == "cpu" else _CHUNK_BYTES_GPU
    rows_per_chunk = max(1, min(ho, budget // max(1, row_bytes)))
    # Output in (B, Ho, Wo, O) memory: the rows of a chunk are one contiguous block of it when B is 1,
    # written in place (no concatenation copy); returned as a channels_last (B, O, Ho, Wo) view.
    compiling = torch.compiler.is_compiling()  # out= into views breaks compiled graphs
    direct = inplace_ok and b == 1 and groups == 1 and not compiling
    out = torch.empty(b, ho, wo, out_ch, device=dev, dtype=weight.dtype) if direct else None
    chunks = []
    for r0 in range(0, ho, rows_per_chunk):
        r1 = min(ho, r0 + rows_per_chunk)
        nr = r1 - r0
        o = off[..., r0:r1, :]
        if inplace_ok and not compiling:
            # Writing straight into the interleaved grid saves a stack() pass.
            grid = torch.empty(b, n_off, taps, nr, wo, 2, device=dev, dtype=sample_dtype)
            torch.add(norm_x, o[:, :, :, 1], alpha=2.0 / w, out=grid[..., 0])
            torch.add(norm_y[:, r0:r1], o[:, :, :, 0], alpha=2.0 / h, out=grid[..., 1])
        else:  # out= is not differentiable
            gx = norm_x + o[:, :, :, 1].to(sample_dtype) * (2.0 / w)
            gy = norm_y[:, r0:r1] + o[:, :, :, 0].to(sample_dtype) * (2.0 / h)
            grid = torch.stack((gx, gy), dim=-1)
        grid = grid.view(b * n_off, taps * nr, wo, 2)
        cols = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # cols: (B*G, C/G, taps*rows, Wo), which is already (B, C, taps, rows*Wo) in memory.
        cols = cols.view(b, n_off, cg_off, taps, nr * wo)
        if msk is not None:
            m = msk[..., r0:r1, :].to(sample_dtype).reshape(b, n_off, 1, taps, nr * wo)
            cols = cols.mul_(m) if inplace_ok else cols * m
        cols = cols.to(weight.dtype).view(b, groups, c_per_group * taps, nr * wo)
        if direct:
            rows = out[0, r0:r1].view(nr * wo, out_ch)  # a contiguous block, not a strided view
            if bias is not None:
                torch.addmm(bias, cols[0, 0].t(), w_t[0], out=rows)
            else:
                torch.mm(cols[0, 0].t(), w_t[0], out=rows)
            continue
        # (B, groups, pixels, O/groups) -> (B, rows, Wo, O)
        part = torch.matmul(cols.transpose(2, 3), w_t)
        part = part.permute(0, 2, 1, 3).reshape(b, nr, wo, out_ch)
        chunks.append(part if bias is None else part + bias)
    if not direct:
        out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
    return out.permute(0, 3, 1, 2)


class ModulatedDeformConvPack(nn.Module):
    """DCNv2 layer that predicts its own offsets and mask from separate features.

    Matches the ``DCN_sep`` layer of Zooming Slow-Mo / MSITF: ``forward(x, feat)``
    applies ``conv_offset`` to ``feat``, splits the result in thirds ``(o1, o2, m)``,
    samples ``x`` with offsets ``max_offset * tanh(cat(o1, o2))`` and mask ``sigmoid(m)``.
    The tanh bound keeps the alignment from diverging early in training; ``max_offset``
    is 10 pixels in the published models.

    Parameters: ``weight`` ``(out, in // groups, k, k)``, ``bias``, and ``conv_offset``
    (a ``k x k`` convolution from ``offset_channels`` to ``3 * deformable_groups * k * k``,
    zero-initialised so training starts as a plain convolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = True,
        offset_channels: int | None = None,
        max_offset: float = 10.0,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.max_offset = float(max_offset)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(
            in_channels if offset_channels is None else offset_channels,
            3 * deformable_groups * kernel_size * kernel_size,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=True,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform weight init as in the reference DCN code, zero bias and zero offsets."""
        stdv = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, feat: Tensor) -> Tensor:
        """Sample ``x`` (B, in, H, W) with offsets/mask predicted from ``feat``."""
        o1, o2, m = torch.chunk(self.conv_offset(feat), 3, dim=1)
        offset = self.max_offset * torch.tanh(torch.cat((o1, o2), dim=1))
        mask = torch.sigmoid(m)
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, deformable_groups={self.deformable_groups}, "
            f"max_offset={self.max_offset}"
        )
