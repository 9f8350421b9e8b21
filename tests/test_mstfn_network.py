"""Tests of the pure-PyTorch MSTFN network (vsrestore.networks.mstfn)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared_path
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def _official_model(parity: dict[str, np.ndarray], dtype: torch.dtype) -> MSTFN:
    model = MSTFN().to(dtype).eval()
    weights = {k[2:]: torch.from_numpy(v) for k, v in parity.items() if k.startswith("w.")}
    model.load_state_dict(weights, strict=True)
    return model


def _randomised(config: MSTFNConfig | None = None, seed: int = 0) -> MSTFN:
    """A float64 model whose PReLU slopes differ from the 0.25 init, so a swapped one shows."""
    torch.manual_seed(seed)
    model = MSTFN(config).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() == 1:
                p.uniform_(0.1, 0.4)
    return model


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-8), (torch.float32, 1e-4)])
def test_parity_with_authors_model(
    mstfn_parity: dict[str, np.ndarray], dtype: torch.dtype, tol: float
) -> None:
    model = _official_model(mstfn_parity, dtype)
    x = torch.from_numpy(mstfn_parity["in.x"]).to(dtype)
    ref = mstfn_parity["out"]
    with torch.no_grad():
        raw = model(x, clamp=False).double().numpy()
    # The authors' model does not clamp (their output leaves [0, 1] at some pixels), so compare
    # the unclamped output; test_clamp covers the default clamp.
    assert np.abs(raw - ref).max() <= tol


def test_clamp() -> None:
    model = _randomised(MSTFNConfig(features=8, num_rpb=1, num_tail=1), seed=6)
    with torch.no_grad():
        # A large output bias pushes many pixels out of range, so the clamp is exercised.
        getattr(model, "convtail2").conv[0].bias.copy_(torch.tensor([0.5, -0.5, 0.0]))
        x = torch.rand(2, 15, 10, 12, dtype=torch.float64)
        raw = model(x, clamp=False)
        clamped = model(x)
    assert (raw < 0).any() and (raw > 1).any()
    assert torch.equal(clamped, raw.clamp(0.0, 1.0))


def test_batch_matches_single_samples() -> None:
    model = _randomised()
    torch.manual_seed(1)
    base = torch.rand(1, 15, 12, 14, dtype=torch.float64)
    # Three clearly different samples: the authors' att[:, i] indexing mixes samples at batch > 1.
    batch = torch.cat([base, base.flip(-1), torch.rand_like(base) * 0.5], dim=0)
    with torch.no_grad():
        together = model(batch, clamp=False)
        for i in range(batch.shape[0]):
            alone = model(batch[i : i + 1], clamp=False)
            torch.testing.assert_close(together[i : i + 1], alone, rtol=0.0, atol=1e-12)


def test_stage_split_equals_forward() -> None:
    model = _randomised(seed=2)
    torch.manual_seed(3)
    x = torch.rand(2, 15, 12, 16, dtype=torch.float64)
    f = [x[:, 3 * i : 3 * i + 3] for i in range(5)]
    with torch.no_grad():
        g = [model.stage1(f[i], f[i + 1], f[i + 2]) for i in range(3)]
        assert g[0].shape == (2, model.config.features, 12, 16)
        split = model.fuse(g[0], g[1], g[2], f[2])
        whole = model(x)
    assert split.shape == (2, 3, 12, 16)
    torch.testing.assert_close(split, whole, rtol=0.0, atol=1e-12)


def test_default_config_matches_official_keys() -> None:
    model = MSTFN()
    assert model.config == MSTFNConfig()
    assert sum(p.numel() for p in model.parameters()) == 4_227_045
    state = model.state_dict()
    assert len(state) == 326
    keys_file = shared_path("parity", "mstfn_official_keys.tsv")
    lines = keys_file.read_text().splitlines()
    expected = [tuple(line.split("\t")) for line in lines if line.strip()]
    assert [(k, str(tuple(v.shape))) for k, v in state.items()] == expected


def test_lighter_config_builds_and_runs() -> None:
    config = MSTFNConfig(features=16, num_rpb=1, num_tail=1)
    model = MSTFN(config).eval()
    assert model.config is config
    assert sum(p.numel() for p in model.parameters()) < 4_227_045 // 10
    x = torch.rand(2, 15, 10, 14)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, 10, 14)
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert model.receptive_radius == 2 * (1 + 8 + 1 + 8) + 2 + 1


@pytest.mark.parametrize(
    "config, radius",
    [
        (MSTFNConfig(features=4), 59),
        (MSTFNConfig(features=4, num_rpb=1, num_tail=1, aspp_rates=(1, 2)), 27),
    ],
)
def test_receptive_radius_matches_gradient_support(config: MSTFNConfig, radius: int) -> None:
    # Width does not change the radius, so a 4-channel model checks the default topology cheaply.
    # float32 suffices: outside the radius the gradient is structurally exactly zero.
    model = _randomised(config, seed=4).float()
    assert model.receptive_radius == radius
    size = 2 * radius + 9
    torch.manual_seed(5)
    x = torch.rand(1, 15, size, size, requires_grad=True)
    c = size // 2
    model(x, clamp=False)[0, :, c, c].sum().backward()
    ys, xs = np.nonzero(x.grad.abs().sum(dim=(0, 1)).numpy())
    assert max(np.abs(ys - c).max(), np.abs(xs - c).max()) == radius


@pytest.mark.parametrize("shape", [(1, 12, 8, 8), (15, 8, 8), (1, 5, 3, 8, 8)])
def test_bad_input_shape_raises(shape: tuple[int, ...]) -> None:
    model = MSTFN(MSTFNConfig(features=4, num_rpb=1, num_tail=1))
    with pytest.raises(ValueError, match=r"MSTFN expects \(B, 15, H, W\)"):
        model(torch.zeros(shape))



def test_aspp_slope_is_a_leaky_relu_and_defaults_to_the_authors_relu() -> None:
    assert MSTFNConfig().aspp_slope == 0.0
    from vsrestore.networks.mstfn import ASPPBranch

    x = torch.tensor([-2.0, 3.0]).view(1, 1, 1, 2)
    for slope, want in ((0.0, [0.0, 3.0]), (0.1, [-0.2, 3.0])):
        branch = ASPPBranch(1, 1, slope)
        with torch.no_grad():
            branch.atrous_convolution.weight.fill_(1.0)
        assert torch.allclose(branch(x).flatten(), torch.tensor(want))
    with pytest.raises(ValueError, match="aspp_slope"):
        MSTFNConfig(aspp_slope=1.0)


def test_trained_presets_keep_gradients_where_a_relu_aspp_has_none() -> None:
    """Every ASPP output negative: a ReLU ASPP passes no gradient back, a leaky one does."""
    from vsrestore.models.registry import get_arch

    for slope, alive in ((0.0, False), (0.1, True)):
        config = MSTFNConfig(features=4, num_rpb=0, num_tail=0, aspp_slope=slope)
        model = MSTFN(config)
        with torch.no_grad():
            model.stage2.aspp.conv1.weight.fill_(-1.0)
            for k in range(1, 5):
                getattr(model.stage2.aspp, f"aspp{k}").atrous_convolution.weight.abs_()
        x = torch.rand(1, 15, 12, 12)
        model(x, clamp=False).sum().backward()
        assert (model.stage1.conv1.conv[0].weight.grad.abs().sum() > 0) == alive
    assert get_arch("mstfn").presets["small"].aspp_slope == 0.1
