"""One training loop for the three networks: Charbonnier loss, Adam, cosine schedule, a time
budget, periodic validation, resumable checkpoints and export to safetensors.

Mixed precision is one code path on CUDA and on the CPU: autocast to bfloat16 (or float16 with a
GradScaler on CUDA GPUs without bf16) over fp32 master weights, with the loss in fp32. On the CPU,
``precision="auto"`` trains in bf16 only where the CPU computes it natively (AMX-BF16 or
AVX512-BF16); elsewhere PyTorch emulates bf16 about 10x slower than fp32, so it trains in fp32.
Networks and batches are channels_last, which alone makes a 3x3 conv about 1.7x faster on the
CPU. Logs go to stderr and to ``<out>/train.log``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import models
from ..models.device import cpu_has_bf16, resolve_device, to_channels_last
from ..models.registry import get_arch
from .sources import load_sources
from .tasks import Task, make_task

log = logging.getLogger("vsrestore.train")


@dataclass
class TrainSettings:
    """Everything a run needs; saved in its checkpoints so a resumed run continues the same run."""

    task: str
    out: str
    data: list[str]
    val_data: list[str] = field(default_factory=list)
    config: str = "tiny"
    steps: int = 1000
    minutes: float = 0.0  # time budget; 0 means no limit
    batch: int = 8
    patch: int = 48
    lr: float = 2e-4
    seed: int = 0
    device: str = "auto"
    max_frames: int | None = 32
    val_every: int = 100
    checkpoint_minutes: float = 2.0
    precision: str = "auto"  # "auto", "fp32", "bf16", "fp16" (CUDA only)
    threads: int = 0  # torch threads on the CPU; 0 means one per core
    init: str | None = None  # weights (a .safetensors or a run's last.pt) a fresh run starts from
    task_options: dict[str, Any] = field(default_factory=dict)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean Charbonnier loss sqrt((x - y)^2 + eps^2), a differentiable L1."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def forward(task: Task, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's raw output for a batch (no clamp for MSTFN: a clamp stops gradients)."""
    return net(x, clamp=False) if task.arch == "mstfn" else net(x)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a training run at ``precision`` on ``device``; None means plain fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cpu" and not cpu_has_bf16():
            raise ValueError(
                "precision bf16 needs a CPU with AMX-BF16 or AVX512-BF16; this one would emulate it "
                "about 10x slower than fp32 (use fp32 or auto)"
            )
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 trains on CUDA only; on the CPU use auto, fp32 or bf16")
        return torch.float16
    raise ValueError(f"precision must be one of auto, fp32, bf16, fp16, not {precision!r}")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """4-D tensors in channels_last (5-D MSITF windows stay as they are)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def batch(task: Task, rng: np.random.Generator, size: int, patch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [task.sample(rng, patch) for _ in range(size)]
    return tuple(channels_last(torch.stack([p[i] for p in pairs]).to(device)) for i in (0, 1))  # type: ignore[return-value]


def train_step(
    task: Task, net: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None,
) -> float:
    """One optimiser step under autocast to ``dtype`` (None: fp32); returns the loss."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        out = forward(task, net, x)
    loss = charbonnier(out.float(), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.item()


def validate(task: Task, net: nn.Module, val: Task, settings: TrainSettings, device: torch.device) -> float:
    """Mean PSNR (dB, peak 1) over fixed validation patches: the same patches every time."""
    rng = np.random.default_rng(12345)
    net.eval()
    scores = []
    with torch.inference_mode():
        for _ in range(4):
            x, y = batch(val, rng, 2, settings.patch, device)
            mse = ((forward(task, net, x).clamp(0, 1) - y) ** 2).mean().item()
            scores.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    net.train()
    return float(np.mean(scores))


def output_layer(net: nn.Module, arch: str) -> nn.Module:
    """The last convolution before each network's residual connection."""
    if arch == "mstfn":
        return getattr(net, f"convtail{net.config.num_tail + 1}").conv[0]
    return {"stifn": lambda: net.qe_out, "msitf": lambda: net.conv_last}[arch]()


def start_as_identity(net: nn.Module, arch: str) -> None:
    """Zero the output layer: every network then starts as its residual's base (the centre frame,
    or the trilinear up-sampling), so training starts from the baseline instead of from noise."""
    layer = output_layer(net, arch)
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()


def initial_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The network weights of a vsrestore ``.safetensors`` file or of a training checkpoint."""
    if Path(path).suffix == ".safetensors":
        return models.read_checkpoint(path)[0]
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def train(settings: TrainSettings, *, resume: bool = True) -> Path:
    """Train (or continue) the run in ``settings.out``; returns the checkpoint path.

    A run stops at ``steps`` or after ``minutes`` of training (summed over resumes). The checkpoint
    ``last.pt`` is written every ``checkpoint_minutes`` and at the end; ``resume`` continues from
    it with the optimizer, schedule and random state, keeping the saved settings except ``steps``
    and ``minutes``, which the new call may raise to extend the run.
    """
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    _log_to(out / "train.log")
    ckpt_path = out / "last.pt"
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False) if resume and ckpt_path.exists() else None
    if state is not None:
        # A resumed run is the saved run; only its length and time budget may be extended.
        settings = dataclasses.replace(TrainSettings(**state["settings"]), steps=settings.steps, minutes=settings.minutes,
                                       threads=settings.threads)
        log.info("resuming %s at step %d (%.1f min trained)", out, state["step"], state["elapsed"] / 60)
    device = resolve_device(settings.device)
    if device.type == "cpu":
        torch.set_num_threads(settings.threads or os.cpu_count() or 1)
    torch.manual_seed(settings.seed)

    task = make_task(settings.task, **settings.task_options)
    cache = out.parent / "encode-cache"
    task.prepare(load_sources(settings.data, settings.max_frames), cache)
    val = make_task(settings.task, **settings.task_options)
    val.prepare(load_sources(settings.val_data or settings.data, settings.max_frames), cache)
    arch = get_arch(task.arch)
    net = arch.build(task.presets.get(settings.config, settings.config))
    if state is None and settings.init:
        net.load_state_dict(initial_weights(settings.init))
        log.info("starting from the weights of %s", settings.init)
    elif state is None:
        start_as_identity(net, task.arch)
    dtype = autocast_dtype(settings.precision, device)
    net = to_channels_last(net.to(device)).train()
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.steps, eta_min=settings.lr * 0.01)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    rng = np.random.default_rng(settings.seed)
    step, elapsed, history = 0, 0.0, []
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sched.T_max = settings.steps
        rng.bit_generator.state = state["rng"]
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
    params = sum(p.numel() for p in net.parameters())
    log.info("task %s, config %s (%s parameters), device %s, precision %s, %d training clips", settings.task,
             settings.config, f"{params:,}", device, str(dtype or torch.float32).removeprefix("torch."),
             len(task.prepared))

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({
            "settings": dataclasses.asdict(settings), "model": net.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": rng.bit_generator.state, "step": step, "elapsed": elapsed,
            "history": history, "config": dataclasses.asdict(net.config), "metadata": task.metadata(),
        }, tmp)
        tmp.replace(ckpt_path)  # a crash mid-write never leaves a broken checkpoint

    budget = settings.minutes * 60
    last_save = time.monotonic()
    losses: list[float] = []
    data_time = run_time = 0.0
    while step < settings.steps and not (budget and elapsed >= budget):
        t0 = time.monotonic()
        x, y = batch(task, rng, settings.batch, settings.patch, device)
        t1 = time.monotonic()
        losses.append(train_step(task, net, opt, scaler, x, y, dtype))
        sched.step()
        step += 1
        t2 = time.monotonic()
        elapsed += t2 - t0
        data_time, run_time = data_time + t1 - t0, run_time + t2 - t0
        if step % settings.val_every == 0 or step == settings.steps:
            score = validate(task, net, val, settings, device)
            history.append({"step": step, "loss": float(np.mean(losses)), "val_psnr": score})
            per_step = run_time / max(len(losses), 1)
            left = (settings.steps - step) * per_step
            if budget:
                left = min(left, budget - elapsed)
            log.info("step %d/%d  loss %.5f  val PSNR %.2f dB  lr %.2e  %.1f min, %.2f s/step (data %.0f %%), "
                     "%.1f min left", step, settings.steps, np.mean(losses), score, sched.get_last_lr()[0],
                     elapsed / 60, per_step, 100 * data_time / max(run_time, 1e-9), max(left, 0) / 60)
            losses, data_time, run_time = [], 0.0, 0.0
        if time.monotonic() - last_save >= settings.checkpoint_minutes * 60:
            save()
            last_save = time.monotonic()
    if not history or history[-1]["step"] != step:
        history.append({"step": step, "loss": float(np.mean(losses)) if losses else None,
                        "val_psnr": validate(task, net, val, settings, device)})
    save()
    log.info("stopped at step %d after %.1f min; checkpoint %s", step, elapsed / 60, ckpt_path)
    return ckpt_path


def export(checkpoint: str | Path, path: str | Path, name: str | None = None) -> Path:
    """Write a training checkpoint as vsrestore ``.safetensors`` with its metadata."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    settings = state["settings"]
    arch = get_arch(make_task(settings["task"]).arch)
    net = arch.build(arch.config_from_dict(state["config"]))
    net.load_state_dict(state["model"])
    history = state["history"]
    meta = {
        **state["metadata"],
        "name": name or Path(path).stem,
        "training": {
            "data": [Path(d).name for d in settings["data"]],
            "validation_data": [Path(d).name for d in settings["val_data"]],
            "steps": state["step"], "minutes": round(state["elapsed"] / 60, 2), "batch": settings["batch"],
            "patch": settings["patch"], "config": settings["config"],
        },
        "validation": {"psnr_db": history[-1]["val_psnr"] if history else None, "history": history[-5:]},
    }
    return models.save(net.eval(), path, json.loads(json.dumps(meta)))


def _log_to(path: Path) -> None:
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in log.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    if not any(type(h) is logging.StreamHandler for h in log.handlers):
        log.addHandler(logging.StreamHandler())  # stderr
    log.setLevel(logging.INFO)
