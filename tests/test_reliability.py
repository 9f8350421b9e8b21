"""Failures are loud and clear: non-finite network output, shared modules, hostile or broken
checkpoints, a run killed mid-write, broken encode-cache entries, scene_changes' errors."""
from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsrestore
from standins import write_panning_frames
from vsrestore.cli import main as cli
from vsrestore.filters.common import Runner
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.training import degrade
from vsrestore.training.data import YUVFrames
from vsrestore.training.train import export, read_training_checkpoint

core = vs.core


# --------------------------------------------------------------------------------------------------
# the filters: non-finite output, the caller's module


def tiny_mstfn() -> MSTFN:
    torch.manual_seed(0)
    return MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)).eval()


def rgb_clip(length: int = 5, fmt: int = vs.RGB24) -> vs.VideoNode:
    return core.std.BlankClip(format=fmt, width=32, height=32, length=length, color=[40, 90, 160])


def test_nan_weights_raise_a_vs_error_naming_filter_and_model():
    net = tiny_mstfn()
    with torch.no_grad():
        net.stage1.conv1.conv[0].weight.fill_(float("nan"))
    out = vsrestore.mstfn(rgb_clip(), model=net)
    with pytest.raises(vs.Error, match=r"vsrestore\.mstfn: model MSTFN produced non-finite values \(NaN or inf\)"):
        out.get_frame(2)


class NaNSTIFN(torch.nn.Module):
    """Stand-in for STIFN whose output is all NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :1], float("nan"))


def test_nan_output_of_a_stand_in_raises_on_stifn():
    clip = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=4)
    out = vsrestore.stifn(clip, model=NaNSTIFN())
    with pytest.raises(vs.Error, match=r"vsrestore\.stifn: model NaNSTIFN produced non-finite values"):
        out.get_frame(0)


def test_runner_names_the_frame_and_model_when_told():
    runner = Runner("stifn", NaNSTIFN(), "cpu", "fp32", name="weights/stifn_lite_qp37.safetensors")
    with pytest.raises(vs.Error) as info:
        runner("forward", torch.zeros(1, 7, 8, 8), frame=12)
    message = str(info.value)
    assert message.startswith("vsrestore.stifn: model 'stifn_lite_qp37.safetensors' (NaNSTIFN)")
    assert "at frame 12" in message
    inf = Runner("mstfn", torch.nn.Identity(), "cpu", "fp32")
    with pytest.raises(vs.Error, match="non-finite"):
        inf("forward", torch.tensor([1.0, float("inf")]))
    assert torch.equal(inf("forward", torch.ones(3)), torch.ones(3))  # finite output passes through


def test_the_callers_module_keeps_its_dtype_and_device():
    net = tiny_mstfn().double()
    first = next(net.parameters())
    before = first.detach().clone()
    out = vsrestore.mstfn(rgb_clip(), model=net)
    out.get_frame(1)
    assert first.dtype == torch.float64 and first.device.type == "cpu"
    assert next(net.parameters()) is first and torch.equal(first, before)
    # a module already at the requested dtype is shared, not copied (stand-ins count their calls)
    same = tiny_mstfn()
    assert Runner("mstfn", same, "cpu", "fp32").net is same
    assert Runner("mstfn", net, "cpu", "fp32").net is not net


# --------------------------------------------------------------------------------------------------
# scene_changes


@pytest.mark.parametrize("kwargs, match", [
    ({"clip": "not a clip"}, "clip must be a VapourSynth video clip"),
    ({"clip": None}, "clip must be a VapourSynth video clip"),
    ({"threshold": True}, "threshold must be a number in"),
    ({"threshold": float("nan")}, "threshold must be a number in"),
    ({"threshold": 1.5}, "threshold must be a number in"),
])
def test_scene_changes_raises_vs_error_with_the_filter_prefix(kwargs, match):
    args = {"clip": rgb_clip(3), **kwargs}
    with pytest.raises(vs.Error, match=rf"^vsrestore\.scene_changes: {match}"):
        vsrestore.scene_changes(args.pop("clip"), **args)


def test_scene_changes_refuses_variable_format_clips():
    mixed = core.std.Splice([rgb_clip(2), core.std.BlankClip(format=vs.GRAY8, width=32, height=32, length=2)],
                            mismatch=True)
    with pytest.raises(vs.Error, match="vsrestore.scene_changes: clip must have a constant format"):
        vsrestore.scene_changes(mixed)


# --------------------------------------------------------------------------------------------------
# training checkpoints


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    """Six 64x64 8-bit frames of a panning textured gradient."""
    folder = tmp_path_factory.mktemp("clip")
    write_panning_frames(folder, 6)
    return folder


def train_args(run: Path, frames: Path, *extra: str) -> list[str]:
    return ["train", "--task", "mstfn", "--out", str(run), "--data", str(frames), "--batch", "2", "--patch", "16",
            "--val-every", "1000", "--threads", "1", "--in-bits", "6", *extra]


class Payload:
    """A pickle that runs a shell command when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on protocol 4 payloads
@pytest.mark.parametrize("how", ["torch.save", "pickle protocol 2", "pickle protocol 4"])
def test_a_hostile_checkpoint_is_refused_and_never_runs(tmp_path, frames_dir, capsys, how):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    state = {"settings": Payload(marker), "model": {}, "step": 1}
    if how == "torch.save":
        torch.save(state, run / "last.pt")
    else:
        (run / "last.pt").write_bytes(pickle.dumps(state, protocol=int(how[-1])))
    with pytest.raises(ValueError, match="refusing to read .*last.pt.* nothing in it was run"):
        read_training_checkpoint(run / "last.pt")
    with pytest.raises(ValueError, match="refusing to read"):
        export(run / "last.pt", tmp_path / "x.safetensors")
    capsys.readouterr()
    assert cli(train_args(run, frames_dir, "--steps", "2")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vsrestore train: refusing to read")
    assert not marker.exists()
    assert not (tmp_path / "x.safetensors").exists()


def test_a_broken_last_checkpoint_falls_back_to_the_previous_one(tmp_path, frames_dir, capsys):
    run = tmp_path / "run"
    assert cli(train_args(run, frames_dir, "--steps", "2", "--checkpoint-minutes", "0.00001")) == 0
    assert (run / "last.prev.pt").is_file()
    prev_step = read_training_checkpoint(run / "last.prev.pt")["step"]
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    assert cli(train_args(run, frames_dir, "--steps", "3")) == 0
    log = (run / "train.log").read_text()
    assert "truncated or corrupt" in log and f"resuming from the previous checkpoint {run / 'last.prev.pt'}" in log
    assert f"resuming {run} at step {prev_step}" in log
    assert read_training_checkpoint(run / "last.pt")["step"] == 3

    for name in ("last.pt", "last.prev.pt"):
        (run / name).write_bytes(b"")
    capsys.readouterr()
    assert cli(train_args(run, frames_dir, "--steps", "4")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "last.pt" in err[0] and "last.prev.pt" in err[0] and "--fresh" in err[0]
    assert cli(train_args(run, frames_dir, "--steps", "1", "--fresh")) == 0


def test_resuming_with_other_flags_says_which_saved_settings_were_kept(tmp_path, frames_dir):
    run = tmp_path / "run"
    assert cli(train_args(run, frames_dir, "--steps", "1")) == 0
    args = train_args(run, frames_dir, "--steps", "2")
    args[args.index("--batch") + 1] = "3"
    args[args.index("--in-bits") + 1] = "5"
    assert cli([*args, "--lr", "1e-3"]) == 0
    line = next(li for li in (run / "train.log").read_text().splitlines() if "its own settings" in li)
    assert "batch 2 (given 3)" in line and "lr 0.0002 (given 0.001)" in line
    assert "task_options {'in_bits': 6} (given {'in_bits': 5})" in line
    state = read_training_checkpoint(run / "last.pt")
    assert state["step"] == 2 and state["settings"]["batch"] == 2 and state["metadata"]["in_bits"] == 6


def test_a_run_killed_after_a_checkpoint_resumes_to_the_requested_step(tmp_path, frames_dir):
    run = tmp_path / "run"
    args = train_args(run, frames_dir, "--steps", "100000", "--checkpoint-minutes", "0.001")
    proc = subprocess.Popen([sys.executable, "-m", "vsrestore.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (run / "last.pt").exists():
            assert proc.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        time.sleep(0.2)  # a few more saves, so the kill may land in the middle of one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    steps = 20
    assert cli(train_args(run, frames_dir, "--steps", str(steps))) == 0
    state = read_training_checkpoint(run / "last.pt")
    assert state["step"] == steps, "the killed run got further than the requested length"
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=True)["step"] == steps
    assert "resuming" in (run / "train.log").read_text()
    vsrestore.models.load(export(run / "last.pt", tmp_path / "resumed.safetensors"))


# --------------------------------------------------------------------------------------------------
# the encode cache


@pytest.fixture(scope="module")
def small_clip() -> YUVFrames:
    rng = np.random.default_rng(3)
    y = rng.integers(16, 235, size=(3, 16, 32), dtype=np.uint8)
    return YUVFrames(y, np.full((3, 8, 16), 128, np.uint8), np.full((3, 8, 16), 120, np.uint8))


def counting_encoder(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = degrade._encode_decode_uncached

    def count(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(degrade, "_encode_decode_uncached", count)
    return calls


def flip_a_sample(path: Path) -> None:
    """Flip one byte inside the Y plane's samples (the first member, after its zip and npy headers)."""
    data = bytearray(path.read_bytes())
    data[300] ^= 0xFF
    path.write_bytes(bytes(data))


def write_entry(path: Path, y: np.ndarray, u: np.ndarray, v: np.ndarray, digest: bool = True) -> None:
    extra = {"sha256": np.array(degrade._planes_digest(YUVFrames(y, u, v)))} if digest else {}
    with open(path, "wb") as fh:
        np.savez(fh, y=y, u=u, v=v, **extra)


BREAKAGES = {
    "empty": lambda p, c: p.write_bytes(b""),
    "truncated": lambda p, c: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]),
    "corrupt": lambda p, c: flip_a_sample(p),
    "not a zip": lambda p, c: p.write_bytes(b"garbage" * 100),
    "wrong shape": lambda p, c: write_entry(p, c.y[:, :8], c.u[:, :4], c.v[:, :4]),
    "wrong dtype": lambda p, c: write_entry(p, c.y.astype(np.uint16), c.u.astype(np.uint16), c.v.astype(np.uint16)),
    "wrong digest": lambda p, c: write_entry(p, c.y ^ np.uint8(1), c.u, c.v) or _swap_digest(p, c),
    "missing plane": lambda p, c: np.savez(p, y=c.y, u=c.u),
}


def _swap_digest(path: Path, clip: YUVFrames) -> None:
    """An entry whose planes fit but whose sha256 belongs to other planes."""
    with np.load(path) as data:
        y, u, v = data["y"], data["u"], data["v"]
    with open(path, "wb") as fh:
        np.savez(fh, y=y, u=u, v=v, sha256=np.array(degrade._planes_digest(clip)))


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_cache_entry_is_rebuilt_with_a_log_line(tmp_path, small_clip, monkeypatch, caplog, breakage):
    fast = {"codec": "x264", "qp": 30, "preset": "ultrafast", "cache_dir": tmp_path}
    good = degrade.encode_decode(small_clip, **fast)
    (entry,) = tmp_path.glob("*.npz")
    BREAKAGES[breakage](entry, small_clip)
    calls = counting_encoder(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=degrade.log.name):
        again = degrade.encode_decode(small_clip, **fast)
    assert calls == [1]
    assert any("unusable" in r.getMessage() and entry.name in r.getMessage() for r in caplog.records)
    for a, b in zip(good, again):
        np.testing.assert_array_equal(a, b)
    degrade.encode_decode(small_clip, **fast)  # the rebuilt entry is used
    assert calls == [1] and not list(tmp_path.glob("*.tmp"))


def test_an_entry_without_a_digest_from_older_versions_is_still_used(tmp_path, small_clip, monkeypatch):
    fast = {"codec": "x264", "qp": 30, "preset": "ultrafast", "cache_dir": tmp_path}
    good = degrade.encode_decode(small_clip, **fast)
    (entry,) = tmp_path.glob("*.npz")
    write_entry(entry, *good, digest=False)
    assert "sha256.npy" not in zipfile.ZipFile(entry).namelist()
    calls = counting_encoder(monkeypatch)
    cached = degrade.encode_decode(small_clip, **fast)
    assert calls == []
    for a, b in zip(good, cached):
        np.testing.assert_array_equal(a, b)


def test_an_unwritable_cache_only_warns(tmp_path, small_clip, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger=degrade.log.name):
        out = degrade.encode_decode(small_clip, codec="x264", qp=30, preset="ultrafast", cache_dir=blocked / "cache")
    assert out.y.shape == small_clip.y.shape
    assert any("cannot write encode cache entry" in r.getMessage() for r in caplog.records)
