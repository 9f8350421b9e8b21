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

import copy
import dataclasses
import json
import logging
import math
import os
import pickle
import re
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
    shrink_videos: int = 1  # training videos area-averaged by this factor (stills are panned at half size)
    pan_motion: str = "rigid"  # how stills move: "rigid" pans or "video" (sway, a moving object, noise)
    strides: list[int] = field(default_factory=lambda: [1])  # every training video once per temporal stride
    pan_frames: int | None = None  # stills as pans of this many frames (filling max_frames); None: one pan
    video_segments: int = 1  # a long training video gives up to this many clips of max_frames frames
    val_every: int = 100
    checkpoint_minutes: float = 2.0
    precision: str = "auto"  # "auto", "fp32", "bf16", "fp16" (CUDA only)
    threads: int = 0  # torch threads on the CPU; 0 means one per core
    init: str | None = None  # weights (a .safetensors or a run's last.pt) a fresh run starts from
    ema: float = 0.999  # decay of the weights' exponential moving average (0: none), validated and exported
    loss: str = "charbonnier"  # "charbonnier" (a smooth L1) or "mse"
    adam_eps: float = 1e-8  # Adam's epsilon: gradients below it barely move their weights
    task_options: dict[str, Any] = field(default_factory=dict)


def cosine_lr(base: float, floor: float, step: int, steps: int) -> float:
    """The learning rate of a cosine schedule from ``base`` to ``floor`` over ``steps`` at ``step``."""
    return floor + (base - floor) * (1 + math.cos(math.pi * min(step, steps) / steps)) / 2


def set_schedule_length(
    opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.CosineAnnealingLR, step: int, steps: int
) -> None:
    """Give a resumed run's cosine schedule the length ``steps``, with the learning rate where a
    cosine of that length is at ``step``. The scheduler updates the rate multiplicatively, so after
    an anneal to its floor a longer schedule would otherwise never raise it again."""
    sched.T_max = steps
    for group, base in zip(opt.param_groups, sched.base_lrs):
        group["lr"] = cosine_lr(base, sched.eta_min, step, steps)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean Charbonnier loss sqrt((x - y)^2 + eps^2), a differentiable L1."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error: the conditional mean, where an L1 loss seeks the median."""
    return ((pred - target) ** 2).mean()


# An L1-type loss is minimised by the median of the error a network cannot predict: where most
# pixels' errors are as often positive as negative (compression artifacts after x265's own
# filters), the median is zero and the network learns to add nothing (STIFN at QP 37 did so for
# 8,050 steps). PSNR scores the mean, which is what MSE seeks.
LOSSES = {"charbonnier": charbonnier, "mse": mse}


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's raw output for a batch: unclamped, since a clamp stops gradients."""
    return net(x, clamp=False)


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
    net: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None, loss_fn: str = "charbonnier",
) -> float:
    """One optimiser step under autocast to ``dtype`` (None: fp32) with the loss ``loss_fn``
    (a name in :data:`LOSSES`); returns the loss."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        out = forward(net, x)
    loss = LOSSES[loss_fn](out.float(), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.item()


def validate(net: nn.Module, val: Task, settings: TrainSettings, device: torch.device) -> float:
    """Mean PSNR (dB, peak 1) over fixed validation patches: the same patches every time."""
    rng = np.random.default_rng(12345)
    training = net.training
    net.eval()
    scores = []
    with torch.inference_mode():
        for _ in range(8):
            x, y = batch(val, rng, 4, settings.patch, device)
            mse = ((forward(net, x).clamp(0, 1) - y) ** 2).mean().item()
            scores.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    net.train(training)
    return float(np.mean(scores))


# Scale of the output layer's Kaiming init. Zero would start every network exactly at its baseline,
# but then only the output layer gets a gradient at first, and with a weak signal training never
# leaves that saddle: MSTFN at 6 bits kept its training loss at the mid-rise level for 750 steps and
# STIFN at QP 37 for 2,100, where 0.1 gained 0.7 dB (MSTFN, training patches) within 300 steps.
OUTPUT_SCALE = 0.1
# The spread of a fresh network's residual on real patches, when a sample batch calibrates it
# (about a quarter of an 8-bit code). Kaiming x 0.1 alone gave a residual of std 0.04-0.08: a fresh
# STIFN scored 26.5 dB against the decoded input's 31.0 and MSTFN 21.5 against mid-rise's 34.8 at
# 4 bits, and their first steps went into shrinking every layer until the head's features died.
OUTPUT_STD = 1e-3


def baseline_network(net: nn.Module, task: Task) -> nn.Module:
    """A copy of ``net`` that outputs the classical baseline its residual starts from (the decoded
    frame, mid-rise, bicubic + blending): its output layer zeroed, its bias the task's constant."""
    base = copy.deepcopy(net)
    init_for_training(base, task.residual_start(), output_scale=0)
    return base


def init_for_training(
    net: nn.Module, residual: float = 0.0, output_scale: float = OUTPUT_SCALE,
    sample: torch.Tensor | None = None, output_std: float = OUTPUT_STD,
) -> None:
    """The network's own training init (:meth:`init_weights`), then the output layer: Kaiming weights
    times ``output_scale`` and the constant ``residual`` as its bias (:meth:`Task.residual_start`:
    MSTFN centres on the mid-rise reconstruction). With ``output_scale=0`` the network starts
    exactly as its residual's base (the centre frame, or the trilinear up-sampling) plus ``residual``.
    Given a ``sample`` batch of inputs, the output weights are then scaled so that the residual
    they add on it has the standard deviation ``output_std``: small, yet a gradient for every layer.

    ``residual`` must be >= 0: MSTFN's output layer is followed by a PReLU, which passes it unchanged.
    """
    if residual < 0:
        raise ValueError(f"residual must be >= 0, not {residual}")
    net.init_weights()
    layer = net.output_layer()
    with torch.no_grad():
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="linear")
        layer.weight.mul_(output_scale)
        if layer.bias is not None:
            layer.bias.zero_()
        if sample is not None and output_scale:
            outputs: list[torch.Tensor] = []
            handle = layer.register_forward_hook(lambda _m, _i, out: outputs.append(out.float()))
            try:
                forward(net, sample)
            finally:
                handle.remove()
            layer.weight.mul_(output_std / max(outputs[0].std().item(), 1e-12))
        if layer.bias is not None:
            layer.bias.fill_(residual)


class WeightAverage:
    """An exponential moving average of a network's weights, which validation and export use.

    At a learning rate that still makes progress, the weights of one step are a noisy sample: the
    validation PSNR of MSTFN moved by 0.2-0.3 dB between checks 250 steps apart. The average of the
    last ~1/(1 - decay) steps is that noise smoothed out. Early steps use a smaller decay, so the
    average does not remember the initialisation for long.
    """

    def __init__(self, net: nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        if state is not None:
            self.net.load_state_dict(state)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for mine, theirs in zip(self.net.state_dict().values(), net.state_dict().values()):
            if mine.is_floating_point():
                mine.lerp_(theirs, 1 - decay)
            else:
                mine.copy_(theirs)


def initial_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The network weights of a vsrestore ``.safetensors`` file or of a training checkpoint (its
    weight average, when the run kept one)."""
    if Path(path).suffix == ".safetensors":
        return models.read_checkpoint(path)[0]
    state = read_training_checkpoint(path)
    return state.get("ema", state["model"])


# --------------------------------------------------------------------------------------------------
# checkpoints: last.pt and, one save behind, last.prev.pt

CHECKPOINT = "last.pt"
PREVIOUS = "last.prev.pt"
# what every checkpoint written by train() holds
_CHECKPOINT_KEYS = ("settings", "model", "optimizer", "scheduler", "rng", "step", "elapsed", "history", "config",
                    "metadata")
# settings a resumed run takes from the new call instead of the checkpoint
_RESUME_OVERRIDES = ("steps", "minutes", "threads", "out")


class UnsafeCheckpointError(ValueError):
    """A checkpoint whose pickle asks for more than plain data: refused, and never run."""


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint read with ``torch.load(weights_only=True)``: tensors and plain data only.

    Raises ValueError naming the file when it is missing, truncated or corrupt, or not a training
    checkpoint, and :class:`UnsafeCheckpointError` when its pickle would import or call anything
    (a tampered or foreign file); such a file is refused before any of it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"training checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        # torch's weights-only unpickler names what it refused: a global (a function or class to
        # import, e.g. os.system) or an opcode it does not allow
        wanted = re.search(r"GLOBAL (\S+)", text) or re.search(r"Unsupported operand (\S+)", text)
        if wanted is not None:
            what = f"global {wanted.group(1)}" if "GLOBAL" in wanted.group(0) else f"pickle opcode {wanted.group(1)}"
            raise UnsafeCheckpointError(
                f"refusing to read {path}: its pickle asks for {what}, which a vsrestore checkpoint never holds "
                f"(a foreign or tampered file; nothing in it was run)"
            ) from None
        raise ValueError(f"cannot read training checkpoint {path}: truncated or corrupt ({_first_line(exc)})") from None
    except Exception as exc:  # zip reader errors, EOFError, OSError: a truncated or damaged file
        raise ValueError(f"cannot read training checkpoint {path}: truncated or corrupt ({_first_line(exc)})") from None
    if not isinstance(state, dict) or (missing := [k for k in _CHECKPOINT_KEYS if k not in state]):
        what = f"it lacks {', '.join(missing)}" if isinstance(state, dict) else f"it holds a {type(state).__name__}"
        raise ValueError(f"{path} is not a vsrestore training checkpoint ({what})")
    return state


def _first_line(exc: BaseException) -> str:
    """The gist of a library error: its first sentence (torch's are paragraphs), or its type."""
    text = str(exc).strip()
    first = text.splitlines()[0].split(". ")[0] if text else ""
    return first or type(exc).__name__


def load_resume_state(out: Path) -> dict[str, Any] | None:
    """The checkpoint to resume the run in ``out`` from, or None when it has none.

    ``last.pt`` is preferred; when it is truncated or corrupt (or missing after a crash between the
    two renames of :func:`save_checkpoint`), ``last.prev.pt``, one save older, is used with a
    warning. A ValueError names the broken files when neither loads; a checkpoint whose pickle
    asks for code is refused outright, without falling back.
    """
    last, prev = out / CHECKPOINT, out / PREVIOUS
    if not last.exists() and not prev.exists():
        return None
    problems = []
    for path in (last, prev):
        if not path.exists():
            problems.append(f"{path} is missing")
            continue
        try:
            state = read_training_checkpoint(path)
        except UnsafeCheckpointError:
            raise
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if path == prev:
            log.warning("%s; resuming from the previous checkpoint %s (step %d) instead", problems[0], prev,
                        state["step"])
        return state
    raise ValueError(
        f"cannot resume the run in {out}: {'; '.join(problems)}. Rerun with --fresh to start it over "
        f"(that overwrites these checkpoints)"
    )


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` and keep the checkpoint it replaces as ``last.prev.pt``.

    The new file is written to a temporary name and flushed to disk before any rename, so a crash
    or ``kill -9`` at any moment leaves at least one complete checkpoint: the old ``path``, or
    ``last.prev.pt`` when the crash falls between the two renames.
    """
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        os.replace(path, path.with_name(PREVIOUS))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (best effort: not every OS can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resumed_settings(saved: dict[str, Any], given: TrainSettings) -> TrainSettings:
    """The settings of a resumed run: the saved ones, except ``steps``, ``minutes``, ``threads`` and
    ``out`` from ``given``. Every other setting ``given`` differs in is logged as a warning: the
    saved run continues, so those flags have no effect."""
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(saved) - fields)
    if unknown:
        log.warning("ignoring settings this version does not know in the checkpoint: %s", ", ".join(unknown))
    kept = TrainSettings(**{k: v for k, v in saved.items() if k in fields})
    ignored = [
        f"{name} {getattr(kept, name)!r} (given {getattr(given, name)!r})"
        for name in sorted(fields - set(_RESUME_OVERRIDES))
        if _normalised(getattr(kept, name)) != _normalised(getattr(given, name))
    ]
    if ignored:
        log.warning("resuming the saved run with its own settings, not the ones given: %s "
                    "(use --fresh to start a new run with them)", "; ".join(ignored))
    return dataclasses.replace(kept, **{name: getattr(given, name) for name in _RESUME_OVERRIDES})


def _normalised(value: Any) -> Any:
    """A setting as compared on resume: tuples like lists (a checkpoint may hold either)."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value


def train(settings: TrainSettings, *, resume: bool = True) -> Path:
    """Train (or continue) the run in ``settings.out``; returns the checkpoint path.

    A run stops at ``steps`` or after ``minutes`` of training (summed over resumes). The checkpoint
    ``last.pt`` is written every ``checkpoint_minutes`` and at the end; ``resume`` continues from
    it with the optimizer, schedule and random state, keeping the saved settings except ``steps``
    and ``minutes``, which the new call may raise to extend the run (other settings that differ are
    logged as a warning). The replaced checkpoint is kept as ``last.prev.pt``, and resuming falls
    back to it when ``last.pt`` is truncated or corrupt. Checkpoints are read with
    ``torch.load(weights_only=True)``: one whose pickle would run code is refused (ValueError).
    """
    if settings.loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {settings.loss!r}")
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    _log_to(out / "train.log")
    ckpt_path = out / CHECKPOINT
    state = load_resume_state(out) if resume else None
    if state is not None:
        # A resumed run is the saved run; only its length and time budget may be extended.
        settings = resumed_settings(state["settings"], settings)
        log.info("resuming %s at step %d (%.1f min trained)", out, state["step"], state["elapsed"] / 60)
    device = resolve_device(settings.device)
    if device.type == "cpu":
        torch.set_num_threads(settings.threads or os.cpu_count() or 1)
    torch.manual_seed(settings.seed)

    task = make_task(settings.task, **settings.task_options)
    cache = out.parent / "encode-cache"
    task.prepare(load_sources(settings.data, settings.max_frames, settings.shrink_videos, settings.pan_motion,
                              tuple(settings.strides), settings.pan_frames, settings.video_segments), cache)
    val = make_task(settings.task, **settings.task_options)
    val.prepare(load_sources(settings.val_data or settings.data, settings.max_frames), cache)
    arch = get_arch(task.arch)
    # A resumed run rebuilds the network it saved, even if the preset of that name changed since.
    net = arch.build(task.fit_config(arch.resolve_config(settings.config)) if state is None else state["config"])
    if state is None and settings.init:
        weights = initial_weights(settings.init)
        try:
            net.load_state_dict(weights)
            log.info("starting from the weights of %s", settings.init)
        except RuntimeError as exc:  # missing, unexpected or misshaped keys
            if not hasattr(net, "load_narrower"):
                raise ValueError(f"--init {settings.init} does not fit {task.arch} config {settings.config!r}: "
                                 f"{_first_line(exc)}") from None
            init_for_training(net, task.residual_start())  # the new channels' init
            try:
                net.load_narrower(weights)
            except ValueError as grow_exc:
                raise ValueError(f"--init {settings.init} does not fit {task.arch} config {settings.config!r} "
                                 f"and cannot grow into it: {grow_exc}") from None
            log.info("starting from the weights of %s, grown into config %r (the same function)",
                     settings.init, settings.config)
    elif state is None:
        # on the CPU: the network moves to its device after its init
        sample, _ = batch(task, np.random.default_rng(settings.seed + 1), settings.batch, settings.patch,
                          torch.device("cpu"))
        init_for_training(net, task.residual_start(), sample=sample)
    dtype = autocast_dtype(settings.precision, device)
    net = to_channels_last(net.to(device)).train()
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, betas=(0.9, 0.99), eps=settings.adam_eps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.steps, eta_min=settings.lr * 0.01)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    rng = np.random.default_rng(settings.seed)
    step, elapsed, history = 0, 0.0, []
    if state is not None:
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"the checkpoint in {out} does not fit its own config ({_first_line(exc)}); "
                             f"rerun with --fresh to start over") from None
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["rng"]
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        set_schedule_length(opt, sched, step, settings.steps)
    average = WeightAverage(net, settings.ema, (state or {}).get("ema")) if settings.ema else None

    def scored() -> nn.Module:
        """The weights validation scores and export writes: the average, when the run keeps one."""
        return average.net if average is not None else net

    params = sum(p.numel() for p in net.parameters())
    log.info("task %s, config %s (%s parameters), device %s, precision %s, %d training clips", settings.task,
             settings.config, f"{params:,}", device, str(dtype or torch.float32).removeprefix("torch."),
             len(task.prepared))
    if not history:  # where the curve starts: the residual's base, or the --init weights
        history.append({"step": 0, "loss": None, "val_psnr": validate(scored(), val, settings, device)})
    if "baseline_psnr" not in history[0]:  # runs from before it was recorded get it on resume
        history[0]["baseline_psnr"] = validate(baseline_network(net, task), val, settings, device)
    baseline = history[0]["baseline_psnr"]
    if step == 0:
        log.info("step 0  val PSNR %.2f dB (before training; the classical baseline: %.2f dB)",
                 history[0]["val_psnr"], baseline)

    def save() -> None:
        # plain data and tensors only, so that the file loads with torch.load(weights_only=True)
        save_checkpoint({
            "settings": dataclasses.asdict(settings), "model": net.state_dict(), "optimizer": opt.state_dict(),
            **({"ema": average.net.state_dict()} if average is not None else {}),
            "scheduler": sched.state_dict(), "rng": rng.bit_generator.state, "step": step, "elapsed": elapsed,
            "history": history, "config": dataclasses.asdict(net.config), "metadata": task.metadata(),
        }, ckpt_path)

    budget = settings.minutes * 60
    last_save = time.monotonic()
    losses: list[float] = []
    data_time = run_time = 0.0
    while step < settings.steps and not (budget and elapsed >= budget):
        t0 = time.monotonic()
        x, y = batch(task, rng, settings.batch, settings.patch, device)
        t1 = time.monotonic()
        losses.append(train_step(net, opt, scaler, x, y, dtype, settings.loss))
        sched.step()
        step += 1
        if average is not None:
            average.update(net, step)
        t2 = time.monotonic()
        elapsed += t2 - t0
        data_time, run_time = data_time + t1 - t0, run_time + t2 - t0
        if step % settings.val_every == 0 or step == settings.steps:
            score = validate(scored(), val, settings, device)
            history.append({"step": step, "loss": float(np.mean(losses)), "val_psnr": score})
            per_step = run_time / max(len(losses), 1)
            left = (settings.steps - step) * per_step
            if budget:
                left = min(left, budget - elapsed)
            log.info("step %d/%d  loss %.5f  val PSNR %.2f dB (%+.2f over the baseline)  lr %.2e  %.1f min, "
                     "%.2f s/step (data %.0f %%), %.1f min left", step, settings.steps, np.mean(losses), score,
                     score - baseline, sched.get_last_lr()[0], elapsed / 60, per_step,
                     100 * data_time / max(run_time, 1e-9), max(left, 0) / 60)
            losses, data_time, run_time = [], 0.0, 0.0
        if time.monotonic() - last_save >= settings.checkpoint_minutes * 60:
            save()
            last_save = time.monotonic()
    if not history or history[-1]["step"] != step:
        history.append({"step": step, "loss": float(np.mean(losses)) if losses else None,
                        "val_psnr": validate(scored(), val, settings, device)})
    save()
    log.info("stopped at step %d after %.1f min; checkpoint %s", step, elapsed / 60, ckpt_path)
    return ckpt_path


def export(
    checkpoint: str | Path, path: str | Path, name: str | None = None, contract: dict[str, Any] | None = None
) -> Path:
    """Write a training checkpoint as vsrestore ``.safetensors`` with its metadata: the run's weight
    average (:class:`WeightAverage`) when it kept one, else its last weights.

    ``contract`` overrides the task's degradation options in the metadata, e.g. ``{"in_bits": 6}``
    for a network pretrained on several bit depths and verified on one.
    """
    state = read_training_checkpoint(checkpoint)
    settings = state["settings"]
    arch = get_arch(make_task(settings["task"]).arch)
    net = arch.build(arch.config_from_dict(state["config"]))
    net.load_state_dict(state.get("ema", state["model"]))  # the weight average, when the run kept one
    history = state["history"]
    meta = {
        **state["metadata"],
        **(contract or {}),
        "name": name or Path(path).stem,
        "training": {
            "data": [Path(d).name for d in settings["data"]],
            "validation_data": [Path(d).name for d in settings["val_data"]],
            "steps": state["step"], "minutes": round(state["elapsed"] / 60, 2), "batch": settings["batch"],
            "patch": settings["patch"], "config": settings["config"], "lr": settings["lr"],
            "init": Path(settings["init"]).parent.name if settings.get("init") else None,
        },
        "validation": {"psnr_db": history[-1]["val_psnr"] if history else None, "history": history},
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
