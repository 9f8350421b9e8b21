"""vsrestore.models: loading the authors' checkpoints and our own safetensors files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vsrestore import models
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.networks.stifn import PRESETS, STIFN


def parity_state_dict(parity: dict[str, np.ndarray], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k[2:]: torch.from_numpy(v) for k, v in parity.items() if k.startswith("w.")}


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_authors_checkpoint_loads_through_the_public_loader_with_parity(tmp_path, mstfn_parity, prefix):
    folder = tmp_path / "checkpoint" / "8_12"
    folder.mkdir(parents=True)
    path = folder / "netG_weights_epo61.pth"
    torch.save(parity_state_dict(mstfn_parity, prefix), path)
    loaded = models.load_model(path)
    model = loaded.network
    assert isinstance(model, MSTFN) and not model.training
    assert loaded.info.arch == "mstfn"
    assert (loaded.info.in_bits, loaded.info.out_bits) == (8, 12)
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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_safetensors_round_trip_keeps_config_and_metadata(tmp_path, preset):
    net = STIFN(PRESETS[preset])
    path = models.save(net, tmp_path / f"stifn_{preset}.safetensors", {"task": "stifn", "qp": 37, "steps": 10})
    loaded = models.load_model(path)
    assert isinstance(loaded.network, STIFN) and loaded.network.config == net.config
    assert (loaded.info.arch, loaded.info.task, loaded.info.qp, loaded.info.in_bits) == ("stifn", "stifn", 37, None)
    assert loaded.info.metadata == {"arch": "stifn", "config": loaded.info.metadata["config"], "task": "stifn", "qp": 37, "steps": 10}
    assert all(torch.equal(a, b) for a, b in zip(loaded.network.state_dict().values(), net.state_dict().values()))


def test_user_folder_names_resolve_but_never_replace_a_shipped_model(tmp_path, monkeypatch):
    from vsrestore.models import shipped

    net = MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1))
    models.save(net, tmp_path / "tiny-mstfn.safetensors", {"in_bits": 8})
    models.save(net, tmp_path / "mstfn_6bit.safetensors", {"in_bits": 8})
    monkeypatch.setenv("VSRESTORE_WEIGHTS", str(tmp_path))
    shipped._WARNED.clear()
    with pytest.warns(UserWarning, match="mstfn_6bit.*is a shipped model"):
        names = models.shipped_models()
    assert "tiny-mstfn" in names and names["mstfn_6bit"].parent != tmp_path
    loaded = models.load_model("tiny-mstfn")
    assert loaded.network.config == net.config and loaded.info.in_bits == 8


def test_shipped_weights_are_checked_against_the_manifest(tmp_path, monkeypatch):
    from vsrestore.models import shipped

    path = models.save(MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)), tmp_path / "m.safetensors", {"in_bits": 4})
    shipped.add_to_manifest(path, models.read_checkpoint(path)[1], folder=tmp_path)
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path)
    assert models.load_model("m").info.in_bits == 4
    assert [e.name for e in shipped.find("mstfn", in_bits=4)] == ["m"] and shipped.find("mstfn", in_bits=8) == []
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its sha256"):
        models.load("m")


def test_every_shipped_model_matches_its_manifest():
    from vsrestore.models import shipped

    entries = [e for e in shipped.catalogue().values() if e.shipped]
    assert entries, "the package ships no model"
    for entry in entries:
        shipped.verify(entry)
        loaded = models.load_model(entry.name)
        assert loaded.info.arch == entry.arch
        assert all(loaded.info.metadata[k] == v for k, v in entry.contract.items())
