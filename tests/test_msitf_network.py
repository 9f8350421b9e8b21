"""MSITF against the authors' model (parity vectors), plus structure and input checks."""
from __future__ import annotations

import copy
import os
import pickle
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vsrestore.models
from vsrestore.networks.msitf import MSITF, MSITFConfig, SwinTrunk, is_computed_key

# Same location rule as tests/conftest.py (not importable as a module from here).
SHARED = Path(os.environ.get("VSRESTORE_SHARED", Path(__file__).resolve().parents[2] / "shared"))

COMPUTED_BUFFERS = ("relative_coords_table", "relative_position_index", "attn_mask")


def _weights(parity: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k[2:]: torch.from_numpy(v) for k, v in parity.items() if k.startswith("w.")}


def _learned(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the buffers MSITF computes itself (non-persistent, so never loaded)."""
    return {k: v for k, v in state.items() if not is_computed_key(k)}


@pytest.fixture(scope="module")
def parity_model(msitf_parity: dict[str, np.ndarray]) -> MSITF:
    model = MSITF().eval()
    model.load_state_dict(_learned(_weights(msitf_parity)), strict=True)
    return model


@pytest.fixture(scope="module")
def float64_output(parity_model: MSITF, msitf_parity: dict[str, np.ndarray]) -> torch.Tensor:
    model = MSITF().eval()
    model.load_state_dict(parity_model.state_dict(), strict=True)
    model = model.double()
    with torch.inference_mode():
        return model(torch.from_numpy(msitf_parity["in.x"]).double())


def test_parameter_count_and_keys() -> None:
    model = MSITF()
    assert sum(p.numel() for p in model.parameters()) == 5_585_611
    tsv = SHARED / "parity" / "msitf_official_keys.tsv"
    if not tsv.exists():
        pytest.skip(f"shared material not present: {tsv}")
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    state = model.state_dict()
    # Same keys, same order, same shapes as the authors' state dict; the buffers MSITF computes
    # are not in its state dict (non-persistent) but exist under the authors' names and shapes.
    assert list(state) == [key for key, _ in rows if not is_computed_key(key)]
    assert sum(is_computed_key(key) for key, _ in rows) == 30
    tensors = {**dict(model.named_buffers()), **state}
    for key, shape in rows:
        assert str(tuple(tensors[key].shape)) == shape, key


def test_computed_buffers_match_authors(msitf_parity: dict[str, np.ndarray]) -> None:
    state = dict(MSITF().named_buffers())
    weights = _weights(msitf_parity)
    names = [k for k in weights if k.rsplit(".", 1)[-1] in COMPUTED_BUFFERS]
    assert len(names) == 6 * 2 * 2 + 6
    for key in names:
        assert torch.equal(state[key].to(weights[key].dtype), weights[key]), key
    # The network's own rule names exactly those keys, and its state dict holds none of them.
    assert [k for k in weights if is_computed_key(k)] == names
    assert not any(is_computed_key(k) for k in MSITF().state_dict())


def test_parity_float64(float64_output: torch.Tensor, msitf_parity: dict[str, np.ndarray]) -> None:
    ref = torch.from_numpy(msitf_parity["out"])
    assert float64_output.shape == ref.shape == (1, 7, 3, 144, 176)
    err = (float64_output - ref).abs().max().item()
    assert err <= 1e-8, err


def test_parity_float32(parity_model: MSITF, msitf_parity: dict[str, np.ndarray]) -> None:
    ref = torch.from_numpy(msitf_parity["out"])
    with torch.inference_mode():
        out = parity_model(torch.from_numpy(msitf_parity["in.x"]))
    assert out.dtype == torch.float32
    err = (out.double() - ref).abs().max().item()
    assert err <= 1e-4, err


def test_load_without_computed_buffers(
    msitf_parity: dict[str, np.ndarray], parity_model: MSITF
) -> None:
    """The buffers are recomputed, so a state dict without them loads strictly and gives the
    same output as the model loaded with them (checked on a crop: exact equality)."""
    weights = {
        k: v for k, v in _weights(msitf_parity).items() if k.rsplit(".", 1)[-1] not in COMPUTED_BUFFERS
    }
    assert len(weights) == 432 - 30
    model = MSITF().eval()
    result = model.load_state_dict(weights, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.from_numpy(msitf_parity["in.x"])[..., 4:17, 6:25]  # 13x19: padded to 16x24
    with torch.inference_mode():
        assert torch.equal(model(x), parity_model(x))


def test_foreign_attn_mask_shape_is_accepted_but_bad_table_is_not() -> None:
    model = MSITF(MSITFConfig(trunk_layers=1))
    state = model.state_dict()
    # A mask built for another construction size is irrelevant (forward builds its own): the
    # rule drops it like any computed buffer.
    state["recon_trunk.layers.0.residual_group.blocks.1.attn_mask"] = torch.zeros(4, 64, 64)
    model.load_state_dict(_learned(state), strict=True)
    state["recon_trunk.layers.0.residual_group.blocks.0.attn.relative_coords_table"] = torch.zeros(1, 7, 7, 2)
    # Unfiltered, computed keys are refused by a strict load rather than loaded or ignored ...
    with pytest.raises(RuntimeError, match="relative_coords_table"):
        model.load_state_dict(state, strict=True)
    # ... and the loader reads the window size from the table: a 7x7 table means 4x4 windows.
    assert vsrestore.models.load(state, arch="msitf").config.window_size == 4


def test_light_config_runs_any_size() -> None:
    cfg = MSITFConfig(
        features=16, deform_groups=2, front_blocks=1, temporal_heads=2,
        trunk_layers=1, trunk_blocks=2, trunk_heads=2, cpb_hidden=32,
    )
    torch.manual_seed(0)
    model = MSITF(cfg).eval()
    assert model.config is cfg
    x = torch.rand(2, 4, 3, 13, 10)
    with torch.inference_mode():
        out = model(x)
        out_first = model(x[:1])
    assert out.shape == (2, 7, 3, 52, 40)
    assert torch.isfinite(out).all()
    # Batch items are independent.
    assert (out[:1] - out_first).abs().max().item() < 1e-5
    # Several sizes through the same model (the shifted-window mask follows the size).
    with torch.inference_mode():
        for h, w in ((8, 8), (17, 25), (5, 3)):
            assert model(torch.rand(1, 4, 3, h, w)).shape == (1, 7, 3, 4 * h, 4 * w)


def test_trilinear_residual_with_zero_network() -> None:
    """With ``conv_last`` zeroed the output is the global residual alone: trilinear with
    align_corners=False, so output k samples input time (k + 0.5) * 4 / 7 - 0.5 (clamped),
    i.e. 0, 0.357, 0.929, 1.5, 2.071, 2.643, 3 - only outputs 0, 3, 6 fall on inputs."""
    cfg = MSITFConfig(features=8, deform_groups=1, front_blocks=0, temporal_heads=1,
                      trunk_layers=0, trunk_heads=1, cpb_hidden=8)
    model = MSITF(cfg).double().eval()
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    x = torch.rand(2, 4, 3, 6, 5, dtype=torch.float64)
    with torch.inference_mode():
        out = model(x)
    assert out.shape == (2, 7, 3, 24, 20)
    spatial = F.interpolate(x.reshape(8, 3, 6, 5), size=(24, 20), mode="bilinear").view(2, 4, 3, 24, 20)
    for k in range(7):
        src = min(max((k + 0.5) * 4 / 7 - 0.5, 0.0), 3.0)
        lo = min(int(src), 2)
        frac = src - lo
        want = (1 - frac) * spatial[:, lo] + frac * spatial[:, lo + 1]
        assert (out[:, k] - want).abs().max().item() < 1e-12, k
    assert (out[:, 0] - spatial[:, 0]).abs().max().item() < 1e-12
    assert (out[:, 6] - spatial[:, 3]).abs().max().item() < 1e-12
    assert (out[:, 3] - 0.5 * (spatial[:, 1] + spatial[:, 2])).abs().max().item() < 1e-12


def _zero_output(cfg: MSITFConfig) -> MSITF:
    model = MSITF(cfg).eval()
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    return model


_BARE = dict(features=8, deform_groups=1, front_blocks=0, temporal_heads=1, trunk_layers=0, trunk_heads=1, cpb_hidden=8)


@pytest.mark.parametrize("lr_grid", ["corner", "centre"])
def test_cubic_base_is_vapoursynth_bicubic_with_linear_blending(lr_grid: str) -> None:
    """The cubic base is the evaluation's classical baseline: resize.Bicubic (Catmull-Rom, zimg's
    default) on the degradation's grid, input frames kept and midpoints blended. Inside the frame
    the two agree to float32 rounding; at the border the base replicates edge pixels."""
    from vsrestore.evaluation.evaluate import bicubic_up
    from vsrestore.evaluation.vsclips import rgb_clip, to_array

    model = _zero_output(MSITFConfig(**_BARE, base="cubic", lr_grid=lr_grid))
    x = np.random.default_rng(7).random((4, 12, 10, 3), dtype=np.float32)
    with torch.inference_mode():
        out = model(torch.from_numpy(x).permute(0, 3, 1, 2)[None])[0].permute(0, 2, 3, 1).numpy()
    up = to_array(bicubic_up(rgb_clip(x), 40, 48, "bd" if lr_grid == "corner" else "bicubic"))
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(out[0::2][inner] - up[inner]).max() < 2e-6
    assert np.abs(out[1::2][inner] - 0.5 * (up[:-1] + up[1:])[inner]).max() < 2e-6
    if lr_grid == "corner":  # every input pixel is kept exactly, borders included
        assert np.array_equal(out[0::2, ::4, ::4], x)


def test_cubic_base_stays_float32_under_bf16_autocast() -> None:
    model = _zero_output(MSITFConfig(**_BARE, base="cubic", lr_grid="corner"))
    x = torch.rand(1, 4, 3, 9, 11)
    with torch.inference_mode():
        exact = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(x)
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, exact)


@pytest.mark.parametrize(
    "shape",
    [(4, 3, 16, 16), (1, 3, 3, 16, 16), (1, 4, 1, 16, 16), (1, 5, 3, 16, 16), (1, 12, 16, 16)],
)
def test_bad_input_raises(shape: tuple[int, ...]) -> None:
    model = MSITF(MSITFConfig(features=8, deform_groups=1, front_blocks=0, temporal_heads=1,
                              trunk_layers=0, trunk_heads=1, cpb_hidden=8))
    with pytest.raises(ValueError, match=r"\(B, 4, 3, h, w\)"):
        model(torch.zeros(shape))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        MSITFConfig(features=60, deform_groups=8)
    with pytest.raises(ValueError):
        MSITFConfig(mask_resolution=20)
    with pytest.raises(ValueError):
        MSITFConfig(input_frames=1)
    with pytest.raises(ValueError, match="base must be one of"):
        MSITFConfig(base="bilinear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr_grid must be one of"):
        MSITFConfig(base="cubic", lr_grid="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trilinear base .* lr_grid must be 'centre'"):
        MSITFConfig(lr_grid="corner")
    arch = vsrestore.models.get_arch("msitf")
    assert arch.config_from_dict({"base": "cubic", "lr_grid": "corner"}).lr_grid == "corner"
    with pytest.raises(ValueError, match="config field 'base' must be"):
        arch.config_from_dict({"base": "bilinear"})


def test_trunk_from_several_threads_matches_a_single_thread() -> None:
    """VapourSynth calls one network from several threads: the shifted-window mask cache must
    neither race nor grow with the number of frame sizes (more sizes here than it keeps)."""
    cfg = MSITFConfig(features=8, deform_groups=1, front_blocks=0, temporal_heads=1, trunk_layers=1,
                      trunk_heads=2, cpb_hidden=8, window_size=4, mask_resolution=8)
    torch.manual_seed(0)
    trunk = SwinTrunk(cfg).eval()
    sizes = [(4, 4), (8, 4), (4, 8), (8, 8), (12, 8), (8, 12), (16, 4)]
    inputs = {size: torch.rand(1, 8, *size) for size in sizes}
    with torch.inference_mode():
        reference = {size: trunk(x) for size, x in inputs.items()}
    order = sizes * 6
    random.Random(3).shuffle(order)

    def run(size: tuple[int, int]) -> torch.Tensor:
        with torch.inference_mode():
            return trunk(inputs[size])

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(run, order))
    for size, out in zip(order, got):
        assert torch.equal(out, reference[size]), size
    assert len(trunk._mask_cache) <= 4
    # The Runner deep-copies a network to move or cast it; the cache (and its lock) must allow it.
    for clone in (copy.deepcopy(trunk), pickle.loads(pickle.dumps(trunk))):
        assert len(clone._mask_cache) == 0
        with torch.inference_mode():
            assert torch.equal(clone(inputs[(8, 8)]), reference[(8, 8)])


def test_whole_network_from_several_threads_matches_a_single_thread() -> None:
    cfg = MSITFConfig(features=8, deform_groups=2, front_blocks=1, temporal_heads=2, trunk_layers=1,
                      trunk_heads=2, cpb_hidden=8)
    torch.manual_seed(0)
    model = MSITF(cfg).eval()
    inputs = [torch.rand(1, 4, 3, h, w) for h, w in ((5, 7), (9, 4), (3, 11))]
    with torch.inference_mode():
        reference = [model(x) for x in inputs]

    def run(i: int) -> torch.Tensor:
        with torch.inference_mode():
            return model(inputs[i])

    order = list(range(len(inputs))) * 2
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, order))
    for i, out in zip(order, got):
        assert torch.equal(out, reference[i]), i


def test_receptive_radius() -> None:
    assert MSITF(MSITFConfig(trunk_layers=0)).receptive_radius == 48


def test_backward_runs() -> None:
    """Training path: gradients reach every parameter (in-place activations are safe)."""
    cfg = MSITFConfig(features=8, deform_groups=2, front_blocks=1, temporal_heads=2,
                      trunk_layers=1, trunk_heads=2, cpb_hidden=8)
    torch.manual_seed(0)
    model = MSITF(cfg)
    # Non-zero offset convolutions, or their gradients would be the only signal and the
    # offsets would not be exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset" in name:
                p.normal_(0, 0.1)
    out = model(torch.rand(2, 4, 3, 9, 11))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
