"""vsrestore.models: loading the authors' checkpoints and our own safetensors files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vsrestore import models
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.networks.stifn import STIFN, STIFN_PRESETS


def parity_state_dict(parity: dict[str, np.ndarray], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k[2:]: torch.from_numpy(v) for k, v in parity.items() if k.startswith("w.")}


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_authors_checkpoint_loads_through_the_public_loader_with_parity(tmp_path, mstfn_parity, prefix):
    folder = tmp_path / "checkpoint" / "8_12"
    folder.mkdir(parents=True)
    path = folder / "netG_weights_epo61.pth"
    torch.save(parity_state_dict(mstfn_parity, prefix), path)
    model = models.load(path)
    assert isinstance(model, MSTFN) and not model.training
    assert model.vsrestore_meta["arch"] == "mstfn"
    assert (model.vsrestore_meta["in_bits"], model.vsrestore_meta["out_bits"]) == (8, 12)
    x = torch.from_numpy(mstfn_parity["in.x"])
    ref = torch.from_numpy(mstfn_parity["out"])
    with torch.inference_mode():
        err64 = (model.double()(x.double(), clamp=False) - ref).abs().max().item()
        err32 = (model.float()(x, clamp=False).double() - ref).abs().max().item()
    assert err64 <= 1e-8
    assert err32 <= 1e-4


def test_wrapped_state_dict_and_explicit_arch(tmp_path):
    net = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1))
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, path)
    loaded = models.load(path, arch="mstfn")
    assert loaded.config == net.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    sd = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)).state_dict()
    broken = dict(sd)
    del broken["convtail1.conv.2.bias"]
    broken["stage2.extra.weight"] = torch.zeros(1)
    broken["convtail1.conv.0.bias"] = torch.zeros(9)
    with pytest.raises(ValueError) as info:
        models.build_from_state_dict(broken)
    text = str(info.value)
    assert "missing keys: convtail1.conv.2.bias" in text
    assert "unexpected keys: stage2.extra.weight" in text
    assert "convtail1.conv.0.bias (9,) (expected (8,))" in text


def test_unrecognised_checkpoint_and_bad_arch():
    with pytest.raises(ValueError, match="cannot recognise the architecture"):
        models.build_from_state_dict({"foo.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="arch must be one of"):
        models.build_from_state_dict({"foo.weight": torch.zeros(2)}, arch="edvr")


def test_missing_file_and_non_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="neither a file nor a shipped model"):
        models.load(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        models.load(junk)


@pytest.mark.parametrize("preset", sorted(STIFN_PRESETS))
def test_safetensors_round_trip_keeps_config_and_metadata(tmp_path, preset):
    net = STIFN(STIFN_PRESETS[preset])
    path = models.save(net, tmp_path / f"stifn_{preset}.safetensors", {"task": "stifn", "qp": 37, "steps": 10})
    loaded = models.load(path)
    assert isinstance(loaded, STIFN) and loaded.config == net.config
    assert loaded.vsrestore_meta == {"arch": "stifn", "config": loaded.vsrestore_meta["config"], "task": "stifn", "qp": 37, "steps": 10}
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_shipped_names_resolve_from_the_weights_folder(tmp_path, monkeypatch):
    net = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1))
    models.save(net, tmp_path / "tiny-mstfn.safetensors", {"in_bits": 8})
    monkeypatch.setenv("VSRESTORE_WEIGHTS", str(tmp_path))
    assert "tiny-mstfn" in models.shipped_models()
    loaded = models.load("tiny-mstfn")
    assert loaded.config == net.config and loaded.vsrestore_meta["in_bits"] == 8
