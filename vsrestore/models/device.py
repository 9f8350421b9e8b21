"""Device and precision selection for inference."""
from __future__ import annotations

import torch

_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn the user's ``device`` argument into a :class:`torch.device`.

    ``"auto"`` picks the first CUDA device when torch sees one, else the CPU. ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are taken literally; asking for CUDA where there is none is an error, not a silent
    fallback, so a user never mistakes a CPU render for a GPU one.
    """
    if isinstance(device, torch.device):
        text = device.type if device.type == "cpu" else str(device)  # "cpu:0" is still the CPU
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", not {device!r}')
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index_text = text[5:] if text.startswith("cuda:") else "0"
        if not index_text.isdigit():
            raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", not {device!r}')
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asks for CUDA, but torch sees no CUDA device here")
        index = int(index_text)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: there are only {torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", index)
    raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", not {device!r}')


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Map ``precision`` ("fp32", "fp16", "bf16") to a dtype allowed on ``device``.

    Half precisions are refused on the CPU: they are slower there and change results.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, not {precision!r}")
    if device.type == "cpu" and precision != "fp32":
        raise ValueError(f'precision={precision!r} needs CUDA; on the CPU only "fp32" is allowed')
    return _PRECISIONS[precision]


def cpu_features() -> set[str]:
    """The CPU's feature flags as the kernel reports them (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16).

    Without either, PyTorch emulates bf16 convolutions: measured on an AVX2-only EPYC, a 64-channel
    3x3 conv ran at 15 GFLOP/s in bf16 against 176 in fp32 (channels_last), so bf16 would be a
    10x slow-down there, not a speed-up.
    """
    return bool(cpu_features() & {"amx_bf16", "avx512_bf16"})


def to_channels_last(net: torch.nn.Module) -> torch.nn.Module:
    """Lay out ``net``'s 4-D weights channels_last and its 5-D (Conv3d) weights channels_last_3d, in place.

    ``Module.to(memory_format=...)`` takes one format and fails on a network mixing 2-D and 3-D
    convolutions, as STIFN does.
    """
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for tensor in [*net.parameters(), *net.buffers()]:
            if tensor.dim() in formats:
                tensor.data = tensor.data.contiguous(memory_format=formats[tensor.dim()])
    return net
