"""Initialisation for training from scratch (loading weights replaces it).

PyTorch's default convolution init (Kaiming-uniform with a = sqrt(5)) shrinks activations by about
half per ReLU layer: in a fresh STIFN ``lite`` the head's last features have 1/20 of the input's
spread, in MSTFN ``small`` Stage II's output 1/35, and training starts with almost no gradient.
Kaiming-normal init for the nonlinearity that follows keeps the spread, and residual branches
start scaled down (as BasicSR does) so that stacked identity skips do not blow it up instead.
"""
from __future__ import annotations

import torch
from torch import nn

RESIDUAL_SCALE = 0.1


@torch.no_grad()
def kaiming_convs(module: nn.Module, negative_slope: float = 0.0) -> None:
    """Kaiming-normal (fan-in) weights and zero biases for every Conv2d/Conv3d in ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, a=negative_slope, mode="fan_in", nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def scale_residual(conv: nn.Module) -> None:
    """Scale the last convolution of a residual branch down, so the block starts near the identity."""
    conv.weight.mul_(RESIDUAL_SCALE)
