"""Tests of the STIFN re-design (vsrestore.networks.stifn)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vsrestore.networks.stifn import STIFN, PRESETS, STIFNConfig

# Published budgets of STIFN-R3 and STIFN-R3L.
BUDGETS = {"r3": 374_000, "r3l": 660_000}


pytestmark = pytest.mark.usefixtures("single_thread")


def _zeroed(config: STIFNConfig | None = None) -> STIFN:
    model = STIFN(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_parameter_budget(name: str) -> None:
    count = sum(p.numel() for p in STIFN(PRESETS[name]).parameters())
    assert abs(count - BUDGETS[name]) <= 0.05 * BUDGETS[name]


def test_default_is_r3() -> None:
    assert STIFN().config == PRESETS["r3"]


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_output_shape_and_range(name: str) -> None:
    model = STIFN(PRESETS[name]).eval()
    x = torch.rand(2, 7, 18, 22)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, 18, 22)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_zero_network_is_identity_on_centre_frame() -> None:
    model = _zeroed()
    x = torch.rand(3, 7, 16, 16)
    x[:, 3, 0, 0] = 0.0
    x[:, 3, 0, 1] = 1.0
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, x[:, 3:4])


def test_output_is_clamped_residual_on_centre() -> None:
    model = _zeroed()
    x = torch.rand(2, 7, 8, 8)
    # With every weight zero the head's output bias is the residual at every pixel.
    for shift in (0.25, -0.25, 2.0, -2.0):
        with torch.no_grad():
            model.qe_out.bias.fill_(shift)
            y = model(x)
        torch.testing.assert_close(y, (x[:, 3:4] + shift).clamp(0.0, 1.0), rtol=0.0, atol=1e-7)
    assert torch.all(y == 0.0)


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_receptive_radius_matches_gradient_support(name: str) -> None:
    torch.manual_seed(0)
    model = STIFN(PRESETS[name]).eval()
    r = model.receptive_radius
    size = 2 * r + 7
    x = (0.25 + 0.5 * torch.rand(1, 7, size, size)).requires_grad_(True)
    c = size // 2
    y = model(x)[0, 0, c, c]
    assert 0.0 < y.item() < 1.0  # else the clamp would zero the gradient
    y.backward()
    grad = x.grad.abs().sum(dim=(0, 1)).numpy()
    ys, xs = np.nonzero(grad)
    assert max(np.abs(ys - c).max(), np.abs(xs - c).max()) == r
    # Every frame contributes, not only the centre one.
    assert torch.all(x.grad.abs().sum(dim=(0, 2, 3)) > 0)


@pytest.mark.parametrize("shape", [(1, 5, 8, 8), (7, 8, 8), (1, 1, 7, 8, 8)])
def test_bad_input_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"STIFN expects \(B, 7, H, W\)"):
        STIFN()(torch.zeros(shape))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        STIFNConfig(frames=6)
    with pytest.raises(ValueError):
        STIFNConfig(features_3d=0)
    with pytest.raises(ValueError, match="negative_slope"):
        STIFNConfig(negative_slope=-0.1)


def test_negative_slope_passes_negative_features() -> None:
    """A leaky head keeps a gradient where a ReLU head is dead (every pre-activation negative)."""
    assert PRESETS["r3"].negative_slope == 0.0 and PRESETS["lite"].negative_slope == 0.1
    for slope, alive in ((0.0, False), (0.1, True)):
        model = STIFN(STIFNConfig(features_3d=2, num_res3d=1, features_fused=4, features_qe=4, num_qe_mid=1,
                                  negative_slope=slope))
        with torch.no_grad():
            model.qe_mid[0].weight.fill_(0.01)
            model.qe_mid[0].bias.fill_(-100.0)
        model(torch.rand(1, 7, 8, 8), clamp=False).sum().backward()
        assert (model.stem.weight.grad.abs().sum() > 0) == alive


def test_onnx_export(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = STIFN().eval()
    path = tmp_path / "stifn.onnx"
    with warnings.catch_warnings():
        # The legacy exporter warns about its own deprecation and about the traced shape check.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 7, 32, 32),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["frames"],
            output_names=["centre"],
            dynamic_axes={"frames": {0: "batch", 2: "height", 3: "width"},
                          "centre": {0: "batch", 2: "height", 3: "width"}},
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _random(config: STIFNConfig, seed: int) -> STIFN:
    torch.manual_seed(seed)
    model = STIFN(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model


def test_grown_network_computes_the_same_function() -> None:
    narrow = _random(PRESETS["lite"], 0)
    wide = _random(PRESETS["medium"], 1)  # its own weights stand in for the new channels' init
    wide.load_narrower(narrow.state_dict())
    x = torch.rand(2, 7, 24, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = narrow(x, clamp=False)
        assert (expected - x[:, 3:4]).abs().mean() > 1e-3  # the narrow network does something
        torch.testing.assert_close(wide(x, clamp=False), expected, rtol=0, atol=1e-6)
    # the new channels still learn: their weights into the old ones are zero, not frozen
    assert wide.body[0].conv1.weight[:16, 16:].abs().max() == 0
    assert wide.body[2].conv2.weight.abs().max() == 0
    assert wide.body[0].conv1.weight[16:].abs().min() > 0


@pytest.mark.parametrize(
    ("old", "match"),
    [
        (PRESETS["medium"], "cannot grow"),  # narrower
        (STIFNConfig(features_3d=8, num_res3d=1, features_fused=16, features_qe=16, num_qe_mid=2), "head's depth"),
        (STIFNConfig(frames=5, features_3d=16, num_res3d=2, features_fused=64, features_qe=64), "window"),
    ],
)
def test_growing_refuses_what_does_not_embed(old: STIFNConfig, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        STIFN(PRESETS["lite"]).load_narrower(STIFN(old).state_dict())
    with pytest.raises(ValueError, match="not a STIFN"):
        STIFN(PRESETS["lite"]).load_narrower({"conv.weight": torch.zeros(1)})
