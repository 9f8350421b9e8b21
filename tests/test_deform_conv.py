"""modulated_deform_conv2d against a naive, loop-based reference of torchvision's semantics."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vsrestore.networks.deform_conv import ModulatedDeformConvPack, modulated_deform_conv2d


def _bilinear_zero_outside(img: torch.Tensor, y: float, x: float) -> float:
    """Value of the 2-D map ``img`` at (y, x); each corner outside the map counts as 0."""
    height, width = img.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    total = 0.0
    for yy, wy in ((y0, 1.0 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1.0 - lx), (x0 + 1, lx)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * float(img[yy, xx])
    return total


def naive_deform_conv2d(
    inp: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int = 1,
) -> torch.Tensor:
    """Explicit loops over batch, output pixels, output channels, input channels and taps."""
    b, c, h, w = inp.shape
    out_ch, cg, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    n_off = offset.shape[1] // (2 * kh * kw)
    c_per_off = c // n_off
    og = out_ch // groups
    out = torch.zeros(b, out_ch, ho, wo, dtype=torch.float64)
    for bi in range(b):
        for oy in range(ho):
            for ox in range(wo):
                # Sample every (input channel, tap) once, then contract with the weight.
                samples = torch.zeros(c, kh, kw, dtype=torch.float64)
                for ci in range(c):
                    g = ci // c_per_off
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = float(offset[bi, g * 2 * kh * kw + 2 * k, oy, ox])
                            dx = float(offset[bi, g * 2 * kh * kw + 2 * k + 1, oy, ox])
                            m = 1.0 if mask is None else float(mask[bi, g * kh * kw + k, oy, ox])
                            y = oy * stride[0] - padding[0] + i * dilation[0] + dy
                            x = ox * stride[1] - padding[1] + j * dilation[1] + dx
                            samples[ci, i, j] = m * _bilinear_zero_outside(inp[bi, ci], y, x)
                for o in range(out_ch):
                    grp = o // og
                    acc = 0.0 if bias is None else float(bias[o])
                    for cl in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                acc += float(weight[o, cl, i, j]) * float(
                                    samples[grp * cg + cl, i, j]
                                )
                    out[bi, o, oy, ox] = acc
    return out


def _case(
    seed: int,
    b: int,
    c: int,
    out_ch: int,
    n_off: int,
    h: int,
    w: int,
    k: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    offset_scale: float,
    with_mask: bool = True,
    with_bias: bool = True,
):
    gen = torch.Generator().manual_seed(seed)
    kh, kw = k
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    inp = torch.randn(b, c, h, w, generator=gen, dtype=torch.float64)
    offset = offset_scale * torch.randn(b, 2 * n_off * kh * kw, ho, wo, generator=gen, dtype=torch.float64)
    # Some exact integer offsets exercise the corner cases where a weight is exactly 0 or 1.
    offset[:, ::7] = torch.round(offset[:, ::7])
    mask = torch.rand(b, n_off * kh * kw, ho, wo, generator=gen, dtype=torch.float64) if with_mask else None
    weight = torch.randn(out_ch, c // groups, kh, kw, generator=gen, dtype=torch.float64)
    bias = torch.randn(out_ch, generator=gen, dtype=torch.float64) if with_bias else None
    return inp, offset, mask, weight, bias


CASES = {
    # name: (b, c, out, n_off, h, w, kernel, stride, padding, dilation, groups, offset_scale)
    "basic_2groups": (2, 4, 3, 2, 5, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 3.0),
    "large_offsets": (1, 4, 2, 4, 5, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 8.0),
    "stride2": (2, 4, 3, 2, 7, 6, (3, 3), (2, 2), (1, 1), (1, 1), 1, 2.5),
    "dilation2_pad2": (1, 4, 3, 1, 6, 7, (3, 3), (1, 1), (2, 2), (2, 2), 1, 2.0),
    "rect_kernel_nopad": (1, 6, 4, 3, 6, 5, (2, 3), (1, 2), (0, 1), (1, 1), 1, 1.5),
    "weight_groups": (2, 4, 6, 2, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 2, 3.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_naive_reference(name: str) -> None:
    b, c, o, n_off, h, w, k, s, p, d, groups, scale = CASES[name]
    inp, offset, mask, weight, bias = _case(7, b, c, o, n_off, h, w, k, s, p, d, groups, scale)
    # The test only means something if plenty of samples straddle or leave the image.
    kh, kw = k
    ho, wo = offset.shape[2:]
    ys = (torch.arange(ho) * s[0] - p[0]).view(1, 1, 1, ho, 1) + (
        torch.arange(kh) * d[0]
    ).repeat_interleave(kw).view(1, 1, kh * kw, 1, 1)
    ys = ys + offset.view(b, n_off, kh * kw, 2, ho, wo)[:, :, :, 0]
    outside = ((ys < 0) | (ys > h - 1)).double().mean()
    assert outside > 0.2

    got = modulated_deform_conv2d(inp, offset, mask, weight, bias, s, p, d, groups)
    want = naive_deform_conv2d(inp, offset, mask, weight, bias, s, p, d, groups)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-10


def test_without_mask_and_bias() -> None:
    inp, offset, _, weight, _ = _case(3, 2, 4, 3, 2, 5, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 3.0, False, False)
    got = modulated_deform_conv2d(inp, offset, None, weight, None)
    want = naive_deform_conv2d(inp, offset, None, weight, None, (1, 1), (1, 1), (1, 1))
    assert (got - want).abs().max().item() <= 1e-10


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 4)],
)
def test_zero_offset_unit_mask_is_conv2d(stride: int, padding: int, dilation: int, groups: int) -> None:
    gen = torch.Generator().manual_seed(11)
    inp = torch.randn(2, 8, 9, 10, generator=gen, dtype=torch.float64)
    weight = torch.randn(12, 8 // groups, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(12, generator=gen, dtype=torch.float64)
    want = F.conv2d(inp, weight, bias, stride, padding, dilation, groups)
    ho, wo = want.shape[2:]
    offset = torch.zeros(2, 2 * 2 * 9, ho, wo, dtype=torch.float64)
    mask = torch.ones(2, 2 * 9, ho, wo, dtype=torch.float64)
    got = modulated_deform_conv2d(inp, offset, mask, weight, bias, stride, padding, dilation, groups)
    assert (got - want).abs().max().item() <= 1e-12


def test_integer_offset_is_shifted_conv() -> None:
    """A uniform integer offset (dy, dx) equals a convolution of the zero-extended, shifted map."""
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(1, 4, 8, 9, generator=gen, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=gen, dtype=torch.float64)
    dy, dx = 2, -3
    offset = torch.zeros(1, 18, 8, 9, dtype=torch.float64)
    offset[:, 0::2] = dy
    offset[:, 1::2] = dx
    # Output (y, x) reads inp[y - 1 + i + dy, x - 1 + j + dx]: a valid convolution of the
    # zero-extended map, read at a shifted window.
    big = F.pad(inp, (4, 4, 4, 4))
    want = F.conv2d(big, weight)[:, :, 3 + dy : 3 + dy + 8, 3 + dx : 3 + dx + 9]
    got = modulated_deform_conv2d(inp, offset, None, weight)
    assert (got - want).abs().max().item() <= 1e-12


def test_float32_close_to_float64() -> None:
    inp, offset, mask, weight, bias = _case(9, 2, 16, 8, 8, 12, 13, (3, 3), (1, 1), (1, 1), (1, 1), 1, 4.0)
    want = modulated_deform_conv2d(inp, offset, mask, weight, bias)
    got = modulated_deform_conv2d(inp.float(), offset.float(), mask.float(), weight.float(), bias.float())
    assert got.dtype == torch.float32
    assert (got.double() - want).abs().max().item() <= 1e-4


def test_rejects_bad_offset_shape() -> None:
    inp = torch.zeros(1, 4, 5, 5)
    weight = torch.zeros(4, 4, 3, 3)
    with pytest.raises(ValueError, match="offset"):
        modulated_deform_conv2d(inp, torch.zeros(1, 17, 5, 5), None, weight)
    with pytest.raises(ValueError, match="offset groups"):
        modulated_deform_conv2d(inp, torch.zeros(1, 18 * 3, 5, 5), None, weight)
    with pytest.raises(ValueError, match="mask"):
        modulated_deform_conv2d(inp, torch.zeros(1, 18, 5, 5), torch.zeros(1, 8, 5, 5), weight)


def test_pack_module_keys_and_semantics() -> None:
    """Offsets are max_offset*tanh(cat(o1, o2)) and the mask sigmoid(m), the thirds of conv_offset."""
    torch.manual_seed(0)
    layer = ModulatedDeformConvPack(8, 6, 3, padding=1, deformable_groups=2).double()
    assert sorted(k for k, _ in layer.state_dict().items()) == [
        "bias",
        "conv_offset.bias",
        "conv_offset.weight",
        "weight",
    ]
    assert layer.conv_offset.weight.shape == (3 * 2 * 9, 8, 3, 3)
    # Freshly initialised: zero offsets, mask 0.5 everywhere.
    x = torch.randn(1, 8, 6, 7, dtype=torch.float64)
    feat = torch.randn(1, 8, 6, 7, dtype=torch.float64)
    plain = F.conv2d(x, layer.weight, layer.bias, 1, 1)
    half = F.conv2d(0.5 * x, layer.weight, None, 1, 1) + layer.bias.view(1, -1, 1, 1)
    assert (layer(x, feat) - half).abs().max().item() <= 1e-12
    assert (plain - half).abs().max().item() > 1e-3

    with torch.no_grad():
        layer.conv_offset.weight.normal_(0, 0.3)
        layer.conv_offset.bias.normal_(0, 0.3)
    xs, fs = x[:, :, :4, :5], feat[:, :, :4, :5]
    with torch.no_grad():
        raw = layer.conv_offset(fs)
        got = layer(xs, fs)
    o1, o2, m = raw[:, :18], raw[:, 18:36], raw[:, 36:]
    offset = 10.0 * torch.tanh(torch.cat((o1, o2), 1))
    want = naive_deform_conv2d(
        xs, offset, torch.sigmoid(m), layer.weight.detach(), layer.bias.detach(),
        (1, 1), (1, 1), (1, 1),
    )
    assert (got - want).abs().max().item() <= 1e-10


def test_gradcheck() -> None:
    """Gradients w.r.t. input, offset, mask, weight and bias (the training path)."""
    gen = torch.Generator().manual_seed(13)
    inp = torch.randn(1, 4, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    # Offsets away from integers: bilinear sampling has kinks at integer positions.
    offset = (torch.randint(-3, 3, (1, 36, 4, 5), generator=gen) + 0.25
              + 0.5 * torch.rand(1, 36, 4, 5, generator=gen, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(1, 18, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 4, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: modulated_deform_conv2d(*a), (inp, offset, mask, weight, bias)
    )
