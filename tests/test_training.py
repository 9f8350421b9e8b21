"""Training entry point: a few steps of each network, resume, export, load, evaluate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsrestore
from standins import write_panning_frames
from vsrestore.cli import main as cli
from vsrestore.training.tasks import augment, make_task
from vsrestore.training.sources import load_sources


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    """Eight 64x64 8-bit frames of a panning textured gradient."""
    folder = tmp_path_factory.mktemp("clip")
    write_panning_frames(folder, 8)
    return folder


@pytest.mark.parametrize(
    "task, options, patch",
    [("mstfn", ["--in-bits", "6", "--video-segments", "2"], 16), ("stifn", ["--qp", "37", "--shrink-videos", "2", "--strides", "1", "2", "--pan-motion", "video"], 16),
     ("msitf", ["--degradation", "bd", "--loss", "mse", "--adam-eps", "1e-12"], 8)],
)
def test_train_resume_export_load_and_evaluate(tmp_path, frames_dir, task, options, patch):
    run = tmp_path / "run"
    args = ["train", "--task", task, "--out", str(run), "--data", str(frames_dir), "--batch", "2",
            "--patch", str(patch), "--val-every", "2", *options]
    assert cli([*args, "--steps", "2"]) == 0
    first = torch.load(run / "last.pt", weights_only=False)
    assert first["step"] == 2
    assert first["optimizer"]["param_groups"][0]["eps"] == (1e-12 if "--adam-eps" in options else 1e-8)
    assert first["settings"]["shrink_videos"] == (2 if "--shrink-videos" in options else 1)
    assert first["settings"]["strides"] == ([1, 2] if "--strides" in options else [1])
    assert first["settings"]["pan_motion"] == ("video" if "--pan-motion" in options else "rigid")
    assert first["settings"]["video_segments"] == (2 if "--video-segments" in options else 1)
    assert 0 < first["history"][0]["baseline_psnr"] < 100
    assert "the classical baseline:" in (run / "train.log").read_text()
    weights = tmp_path / f"{task}.safetensors"
    assert cli([*args, "--steps", "2", "--export", str(weights)]) == 0  # same run: resumes at step 2
    resumed = torch.load(run / "last.pt", weights_only=False)
    assert resumed["step"] == 2 and resumed["history"] == first["history"]
    assert cli([*args, "--steps", "4"]) == 0  # a longer run continues from the checkpoint
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 4
    assert "resuming" in (run / "train.log").read_text()

    info = vsrestore.models.load_model(weights).info
    meta = info.metadata
    assert info.arch == task and info.task == task and meta["training"]["steps"] == 2
    assert np.isfinite(meta["validation"]["psnr_db"])
    out = tmp_path / "eval"
    assert cli(["evaluate", "--task", task, "--model", str(weights), "--clips", str(frames_dir), "--out", str(out),
                "--max-frames", "5", "--precision", "fp32", "auto", *options[:2]]) == 0  # the task option
    table = (out / "results.md").read_text()
    assert f"vsrestore.{task} (fp32)" in table and f"vsrestore.{task} (auto)" in table and "**average**" in table
    rows = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in rows} >= {f"vsrestore.{task} (fp32)", f"vsrestore.{task} (auto)"}
    assert list((out / "crops").glob("*.png"))


def test_identity_start_matches_the_baseline(frames_dir):
    from vsrestore.models.registry import get_arch
    from vsrestore.training.train import baseline_network, forward, init_for_training

    for name in ("mstfn", "stifn"):
        task = make_task(name)
        task.prepare(load_sources([frames_dir], 8))
        x, y = task.sample(np.random.default_rng(0), 16)
        net = get_arch(task.arch).build("tiny")
        init_for_training(net, output_scale=0)
        centre = x[6:9] if name == "mstfn" else x[3:4]
        assert torch.equal(forward(net, x[None])[0], centre)
        # what `vsrestore train` logs as the baseline: the same start, from a network in training
        init_for_training(net, sample=x[None])
        assert not torch.equal(forward(net, x[None])[0], centre)
        baseline = forward(baseline_network(net, task), x[None])[0]
        assert torch.allclose(baseline, centre + task.residual_start(), rtol=0, atol=1e-7)  # mid-rise, decoded
    # MSITF starts as bicubic + linear blending on BD's grid: input pixel i stays on output pixel 4i
    task = make_task("msitf", degradation="bd")
    task.prepare(load_sources([frames_dir], 8))
    x, _ = task.sample(np.random.default_rng(0), 8)
    net = get_arch("msitf").build(task.fit_config(get_arch("msitf").resolve_config("tiny")))
    init_for_training(net, output_scale=0)
    out = forward(net, x[None])[0]
    assert torch.equal(out[0::2, :, ::4, ::4], x)
    assert torch.allclose(out[1::2], 0.5 * (out[0:-1:2] + out[2::2]))


def test_mstfn_starts_as_mid_rise(frames_dir):
    """One contract: a fresh MSTFN adds half an input step to the zero-padded frame (mid-rise)."""
    from vsrestore.models.registry import get_arch
    from vsrestore.training.train import forward, init_for_training

    for bits, step in ((4, 4096), (6, 1024), (8, 256)):
        task = make_task("mstfn", in_bits=bits)
        task.prepare(load_sources([frames_dir], 8))
        x, _ = task.sample(np.random.default_rng(0), 16)
        net = get_arch("mstfn").build("tiny")
        init_for_training(net, task.residual_start(), output_scale=0)
        out = forward(net, x[None])[0] * 65535
        assert torch.allclose(out, x[6:9] * 65535 + step / 2, atol=1e-3)
        # the default init: small random output weights, so every layer gets a gradient at once
        init_for_training(net, task.residual_start())
        x = x[None].requires_grad_()
        forward(net, x).sum().backward()
        assert net.output_layer().weight.abs().max() > 0
        assert all(p.grad is not None and p.grad.abs().max() > 0 for p in net.stage1.conv1.parameters())
    assert make_task("mstfn", in_bits=[4, 6]).residual_start() == 0.0
    assert make_task("stifn").residual_start() == 0.0


def test_augment_is_consistent_across_tensors():
    a = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    for seed in range(8):
        x, y = augment(np.random.default_rng(seed), a, a.clone(), time_dims=(0, 0))
        assert torch.equal(x, y)
        assert sorted(x.flatten().tolist()) == sorted(a.flatten().tolist())


@pytest.mark.parametrize("degradation", ["bd", "bicubic"])
def test_msitf_patches_keep_the_degradation_grid_under_every_augmentation(frames_dir, degradation, monkeypatch):
    """Each flip, transpose and reversal keeps every input patch the degradation of its target patch
    (inside the kernel's reach): BD's grid is not symmetric, a flipped target is cropped 3 pixels earlier."""
    import itertools

    from vsrestore.training import tasks
    from vsrestore.training.degrade import bd_downsample, bicubic_downsample

    down = bd_downsample if degradation == "bd" else bicubic_downsample
    task = make_task("msitf", degradation=degradation)
    task.prepare(load_sources([frames_dir], 8))
    rng = np.random.default_rng(3)
    for choice in itertools.product([False, True], repeat=4):
        monkeypatch.setattr(tasks, "draw_augmentation", lambda _rng, c=choice: c)
        for _ in range(3):
            inp, tgt = task.sample(rng, 12)
            redone = torch.from_numpy(down(tgt.permute(0, 2, 3, 1).numpy(), scale=4)).permute(0, 3, 1, 2)
            assert torch.allclose(redone[::2, :, 2:-2, 2:-2], inp[:, :, 2:-2, 2:-2], atol=1e-5), choice
    assert make_task("msitf", degradation="bicubic").fit_config(get_preset("tiny")).lr_grid == "centre"
    assert make_task("msitf").fit_config(get_preset("tiny")).lr_grid == "corner"


def get_preset(name):
    from vsrestore.models.registry import get_arch

    return get_arch("msitf").resolve_config(name)


def test_letterbox_bars_are_black_in_every_input_frame_and_the_truth(frames_dir):
    task = make_task("mstfn", in_bits=6, letterbox=1.0)
    task.prepare(load_sources([frames_dir], 8))
    rng = np.random.default_rng(5)
    widths = set()
    for _ in range(12):
        x, y = task.sample(rng, 16)
        black_x, black_y = (x == 0).all(0), (y == 0).all(0)
        assert torch.equal(black_x, black_y)
        rows, cols = black_y.all(1), black_y.all(0)
        band = rows if rows.any() else cols  # one full band along an edge, 2..8 of 16 pixels
        width = int(band.sum())
        assert 2 <= width <= 8 and (band[:width].all() or band[-width:].all())
        widths.add(width)
    assert len(widths) > 1
    # without the option the samples (and the random stream) are those of earlier runs
    plain, off = make_task("mstfn", in_bits=6), make_task("mstfn", in_bits=6, letterbox=0.0)
    plain.prepared = off.prepared = task.prepared
    for a, b in zip(plain.sample(np.random.default_rng(9), 16), off.sample(np.random.default_rng(9), 16)):
        assert torch.equal(a, b)


def test_bad_task_and_patch():
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("edvr")
    task = make_task("stifn")
    task.prepared = [(np.zeros((7, 8, 8), np.uint8), np.zeros((7, 8, 8), np.uint8))]
    with pytest.raises(ValueError, match="patch 16 is larger"):
        task.sample(np.random.default_rng(0), 16)


def test_sources_smaller_than_the_patch_sit_out():
    """A patch larger than some training frames draws from the others (a panned still is half its
    photograph's size); only a patch larger than all of them is an error."""
    small, large = np.full((7, 8, 8), 10, np.uint8), np.full((7, 32, 32), 200, np.uint8)
    task = make_task("stifn")
    task.prepared = [(small, small), (large, large), (small, small)]
    rng = np.random.default_rng(0)
    assert {round(float(task.sample(rng, 16)[0].mean()) * 255) for _ in range(20)} == {200}
    assert {round(float(task.sample(rng, 8)[0].mean()) * 255) for _ in range(40)} == {10, 200}
    with pytest.raises(ValueError, match=r"patch 33 is larger than every training frame \(the largest is 32x32\)"):
        task.sample(rng, 33)
    # MSITF needs one low-resolution pixel more than the patch: a flipped BD axis crops one pixel later
    msitf = make_task("msitf")
    frames = np.zeros((7, 12, 12, 3), np.float32)
    msitf.prepared = [(frames, np.zeros((7, 48, 48, 3), np.float32))]
    assert msitf.sample(rng, 11)[0].shape == (4, 3, 11, 11)
    with pytest.raises(ValueError, match="larger than every training frame"):
        msitf.sample(rng, 12)


def test_shrunk_videos_are_area_averaged_and_stills_are_not(frames_dir, tmp_path):
    from vsrestore.training import data
    from vsrestore.training.sources import area_average

    frames = np.array([[[[0], [2], [255]], [[1], [3], [255]], [[9], [9], [9]]]], np.uint8)  # (1, 3, 3, 1)
    assert area_average(frames, 2).tolist() == [[[[2]]]]  # (0+2+1+3)/4 = 1.5 rounds to even; edge dropped
    deep = np.full((1, 4, 4, 3), 65535, np.uint16)
    assert area_average(deep, 2).dtype == np.uint16 and (area_average(deep, 2) == 65535).all()
    (full,), (half,) = load_sources([frames_dir], 8), load_sources([frames_dir], 8, shrink=2)
    assert half.frames.shape == (8, 32, 32, 3)
    assert np.array_equal(half.frames, area_average(full.frames, 2))
    image = np.random.default_rng(1).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    data.write_image(tmp_path / "still.png", image)
    (pan,), (pan_shrunk,) = (load_sources([tmp_path / "still.png"], 6, shrink=s) for s in (1, 2))
    assert np.array_equal(pan.frames, pan_shrunk.frames)
    with pytest.raises(ValueError, match="shrink must be >= 1"):
        load_sources([frames_dir], 8, shrink=0)


def test_strides_add_each_video_at_faster_motion_and_leave_stills_alone(frames_dir, tmp_path):
    from vsrestore.training import data

    (full,) = load_sources([frames_dir], 8)
    one, two, three = load_sources([frames_dir], 8, strides=(1, 2, 3))
    assert (one.name, two.name, three.name) == (full.name, f"{full.name}_s2", f"{full.name}_s3")
    assert np.array_equal(one.frames, full.frames)
    assert np.array_equal(two.frames, full.frames[[0, 2, 4, 6]]) and np.array_equal(three.frames, full.frames[[0, 3, 6]])
    (shrunk_two,) = load_sources([frames_dir], 8, shrink=2, strides=(2,))
    assert np.array_equal(shrunk_two.frames, load_sources([frames_dir], 8, shrink=2)[0].frames[::2])
    data.write_image(tmp_path / "still.png", np.zeros((240, 320, 3), np.uint8))
    assert [s.name for s in load_sources([tmp_path / "still.png"], 6, strides=(1, 2))] == ["still_pan"]
    for bad in ((), (0,), (1, -2)):
        with pytest.raises(ValueError, match="strides must be"):
            load_sources([frames_dir], 8, strides=bad)


def test_video_segments_read_a_long_video_on_as_further_clips(frames_dir, tmp_path):
    from vsrestore.training import data

    (full,) = load_sources([frames_dir], 8)
    name = full.name
    parts = load_sources([frames_dir], 3, segments=3)
    assert [p.name for p in parts] == [name, f"{name}_seg1", f"{name}_seg2"]
    for part, (start, stop) in zip(parts, [(0, 3), (3, 6), (6, 8)]):  # the 2-frame tail holds half of 3
        assert np.array_equal(part.frames, full.frames[start:stop])
    assert [p.frames.shape[0] for p in load_sources([frames_dir], 3, segments=2)] == [3, 3]  # up to 2 only
    assert [p.frames.shape[0] for p in load_sources([frames_dir], 6, segments=2)] == [6]  # a 2-frame tail is not
    assert [p.name for p in load_sources([frames_dir], 3, segments=2, strides=(1, 2))] == [
        name, f"{name}_s2", f"{name}_seg1", f"{name}_seg1_s2"]
    assert np.array_equal(load_sources([frames_dir], 4, shrink=2, segments=2)[1].frames,
                          load_sources([frames_dir], 8, shrink=2)[0].frames[4:])
    data.write_image(tmp_path / "still.png", np.zeros((240, 320, 3), np.uint8))
    (still,) = load_sources([tmp_path / "still.png"], 6, segments=3)
    assert still.name == "still_pan" and still.frames.shape[0] == 6
    for frames, bad in ((8, 0), (None, 2)):
        with pytest.raises(ValueError, match="segments must be >= 1"):
            load_sources([frames_dir], frames, segments=bad)


def test_pan_frames_cut_a_still_into_several_faster_pans(tmp_path):
    from vsrestore.training import data
    from vsrestore.training.sources import pan_clip

    image = np.random.default_rng(4).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    data.write_image(tmp_path / "still.png", image)
    pans = load_sources([tmp_path / "still.png"], 20, pan_frames=8)
    assert [p.name for p in pans] == ["still_pan0", "still_pan1", "still_pan2"]  # 3 x 8 frames fill 20
    assert all(p.frames.shape[0] == 8 for p in pans)
    (one,) = load_sources([tmp_path / "still.png"], 20)
    seed = int.from_bytes(b"still.pn", "little")
    assert np.array_equal(one.frames, pan_clip(image, 20, seed))
    assert np.array_equal(pans[1].frames, pan_clip(image, 8, seed + 1))  # each pan on its own path
    assert not np.array_equal(pans[0].frames, pans[1].frames)
    with pytest.raises(ValueError, match="pan_frames must be >= 2"):
        load_sources([tmp_path / "still.png"], 20, pan_frames=1)


def test_bicubic_baseline_is_aligned_with_bd_sampling():
    from vsrestore.training.degrade import bd_downsample
    from vsrestore.evaluation.evaluate import bicubic_up
    from vsrestore.evaluation.metrics import psnr
    from vsrestore.evaluation.vsclips import rgb_clip, to_array

    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    hr = np.stack([np.sin(3 * xx + 2 * yy), np.cos(2 * xx - yy), xx * yy], -1)[None].astype(np.float32) * 0.4 + 0.5
    lr = bd_downsample(hr, scale=4).astype(np.float32)
    scores = {}
    for shift in (-0.375, 0.0, 0.375):
        up = vs.core.resize.Bicubic(rgb_clip(lr), 64, 64, src_left=shift, src_top=shift)
        scores[shift] = psnr(to_array(up)[0, 8:-8, 8:-8], hr[0, 8:-8, 8:-8], 1.0)
    assert max(scores, key=scores.get) == 0.375
    aligned = to_array(bicubic_up(rgb_clip(lr), 64, 64, "bd"))[0, 8:-8, 8:-8]
    assert psnr(aligned, hr[0, 8:-8, 8:-8], 1.0) == scores[0.375]


def test_weight_average_is_validated_saved_and_exported(tmp_path, frames_dir):
    """The run keeps an average of its weights: checkpointed beside them, and what export writes."""
    from safetensors.torch import load_file

    from vsrestore.training.train import WeightAverage

    net = torch.nn.Linear(2, 1)
    average = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    average.update(net, step=1000)  # decay 0.5: halfway from the old weights to the new
    first = average.net.weight.clone()
    with torch.no_grad():
        net.weight.fill_(3.0)
    average.update(net, step=1001)
    assert torch.allclose(average.net.weight, (first + 3.0) / 2)

    run = tmp_path / "run"
    args = ["train", "--task", "stifn", "--out", str(run), "--data", str(frames_dir), "--batch", "2",
            "--patch", "16", "--val-every", "2", "--steps", "3", "--qp", "37"]
    weights = tmp_path / "stifn.safetensors"
    assert cli([*args, "--export", str(weights)]) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["ema"].keys() == state["model"].keys()
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    exported = load_file(weights)
    assert all(torch.equal(exported[k], state["ema"][k]) for k in exported)
    with pytest.raises(SystemExit) as exit_info:  # the decay must be below 1
        cli([*args, "--ema", "1.5"])
    assert exit_info.value.code == 2


def test_a_resumed_run_follows_its_new_schedule_length():
    """Lengthening an annealed run raises its learning rate to where the longer cosine is."""
    from vsrestore.training.train import cosine_lr, set_schedule_length

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-5)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # annealed to the floor
    set_schedule_length(opt, sched, step=4, steps=8)
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine_lr(1e-3, 1e-5, 4, 8)) == pytest.approx(5.05e-4)
    opt.step()
    sched.step()  # and the scheduler goes on along the longer cosine
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine_lr(1e-3, 1e-5, 5, 8))



def test_init_grows_a_narrower_stifn_and_refuses_what_does_not_fit(tmp_path, frames_dir, capsys):
    common = ["train", "--task", "stifn", "--data", str(frames_dir), "--batch", "2", "--patch", "16",
              "--val-every", "1", "--steps", "1", "--threads", "1"]
    assert cli([*common, "--config", "lite", "--out", str(tmp_path / "lite")]) == 0
    lite = tmp_path / "lite" / "last.pt"
    assert cli([*common, "--config", "medium", "--init", str(lite), "--out", str(tmp_path / "medium")]) == 0
    log = (tmp_path / "medium" / "train.log").read_text()
    assert "grown into config 'medium' (the same function)" in log
    # the grown network starts where the narrow one stopped: the same validation PSNR
    val = [torch.load(tmp_path / run / "last.pt", weights_only=False)["history"] for run in ("lite", "medium")]
    assert val[1][0]["step"] == 0 and val[1][0]["val_psnr"] == pytest.approx(val[0][-1]["val_psnr"], abs=0.01)
    capsys.readouterr()
    assert cli([*common, "--config", "tiny", "--init", str(lite), "--out", str(tmp_path / "tiny")]) == 1
    err = capsys.readouterr().err
    assert "does not fit stifn config 'tiny' and cannot grow into it:" in err and "head's depth" in err, err
