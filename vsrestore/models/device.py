"""Device and precision selection for inference."""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

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


# Networks whose output tolerates fp16 as well as bf16.
_HALF_OK = frozenset({"stifn", "msitf"})
_BF16_OK = _HALF_OK | {"mstfn"}

# Methods that "auto" keeps in float32 although the rest of the network runs in half precision.
# MSTFN restores the bits below the 8 that bf16 holds. Measured on the shipped models (held-out
# Carphone and Cars, bf16 autocast against fp32, scripts/bench_precision_quality.py): all of MSTFN
# in bf16 moves its 16-bit output by up to 1.5 (8-bit model) and 4.3 (4-bit) 10-bit codes; with
# Stage I in fp32 and the fusion in bf16, by up to 0.09 and 1.1. Stage I is the sensitive half.
_FP32_UNDER_AUTO = {"mstfn": frozenset({"stage1"})}


def auto_precision(arch: str | None, device: torch.device) -> str:
    """What ``precision="auto"`` means for network ``arch`` on ``device``.

    - An unknown network: ``"fp32"``.
    - MSTFN, STIFN, MSITF on the CPU: ``"bf16"`` (autocast) where the CPU computes it natively
      (:func:`cpu_has_bf16`), else ``"fp32"`` (emulated bf16 is about 10x slower than fp32).
      MSTFN's Stage I stays float32 even then (:func:`fp32_methods`).
    - On CUDA: ``"bf16"`` where the GPU computes it (Ampere and later); else ``"fp16"`` for STIFN
      and MSITF and ``"fp32"`` for MSTFN.
    """
    if arch not in _BF16_OK:
        return "fp32"
    if device.type == "cuda":
        if _cuda_bf16(device):
            return "bf16"
        return "fp16" if arch in _HALF_OK else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def fp32_methods(arch: str | None, precision: str) -> frozenset[str]:
    """The methods of network ``arch`` that run in float32 at ``precision``, whatever the rest runs
    in: under ``"auto"``, MSTFN's ``stage1`` (see :data:`_FP32_UNDER_AUTO`); an explicit precision
    applies to every method."""
    return _FP32_UNDER_AUTO.get(arch or "", frozenset()) if precision == "auto" else frozenset()


def _cuda_bf16(device: torch.device) -> bool:
    try:
        with torch.cuda.device(device):
            try:  # emulated bf16 (before Ampere) is no speed-up: ask for the native kind
                return bool(torch.cuda.is_bf16_supported(including_emulation=False))
            except TypeError:  # torch < 2.3 has no such argument
                return bool(torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 - no usable CUDA: the half precision every GPU has
        return False


def resolve_precision(precision: str, device: torch.device, arch: str | None = None) -> torch.dtype:
    """Map ``precision`` ("auto", "fp32", "fp16", "bf16") to a dtype allowed on ``device``.

    ``"auto"`` is :func:`auto_precision` for ``arch``. On the CPU, ``"bf16"`` needs native bfloat16
    (AMX-BF16 or AVX512-BF16; emulated it is about 10x slower than fp32) and ``"fp16"`` is refused
    (no CPU path computes it faster than fp32).
    """
    if precision == "auto":
        precision = auto_precision(arch, device)
    if precision not in _PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(_PRECISIONS)} or "auto", not {precision!r}')
    if device.type == "cpu" and precision == "fp16":
        raise ValueError('precision=\'fp16\' needs CUDA; on the CPU use "auto", "fp32" or "bf16" (where the CPU '
                         'computes bfloat16 natively)')
    if device.type == "cpu" and precision == "bf16" and not cpu_has_bf16():
        raise ValueError(
            "precision='bf16' needs CUDA or a CPU that computes bfloat16 natively (AMX-BF16 or AVX512-BF16); "
            "this CPU has neither and would emulate it about 10x slower than fp32: use \"auto\" or \"fp32\""
        )
    return _PRECISIONS[precision]


def stream_threads(num_streams: int, total: int | None = None) -> int:
    """Torch threads for each of ``num_streams`` frames rendered at once: ``total // num_streams``
    (at least 1), so that streams x threads = ``total``, by default ``torch.get_num_threads()`` (one
    per core unless the process set another number). More threads than cores only make the streams
    fight for them: 2 streams of 2 threads each on 2 cores rendered no faster than 1 stream."""
    total = torch.get_num_threads() if total is None else total
    return max(1, total // max(1, num_streams))


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


_CONVS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}


class ThreadCountInvariantConvs(TorchFunctionMode):
    """Within this mode, a CPU convolution's result does not depend on ``torch.get_num_threads()``.

    PyTorch sends a float32 1x1 convolution (unstrided, undilated, batch under 16) to its native
    GEMM path when it runs on one thread and to oneDNN on more, and the two round differently (1e-7
    relative; amplified by later bf16 layers, one 10-bit code at the output). A render worker on one
    thread would then not reproduce vspipe on two, nor ``num_streams=2`` reproduce 1. Every other
    convolution takes one path at any thread count (3x3 kernels and bf16 always go to oneDNN), and
    so does a 1x1 one marked dilated: for a 1x1 kernel the dilation changes nothing else.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        dims = _CONVS.get(func)
        if dims is not None:
            args, kwargs = _dilate_pointwise(dims, args, kwargs)
        return func(*args, **kwargs)


def _dilate_pointwise(dims: int, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``conv(input, weight, bias, stride, padding, dilation, groups)`` arguments with dilation 2
    when the kernel is 1x1 (1x1x1) and the dilation 1."""
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    if not isinstance(weight, torch.Tensor) or weight.device.type != "cpu" or any(s != 1 for s in weight.shape[2:]):
        return args, kwargs
    dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
    if any(d != 1 for d in (dilation if isinstance(dilation, (tuple, list)) else (dilation,))):
        return args, kwargs
    if len(args) > 5:
        return (*args[:5], (2,) * dims, *args[6:]), kwargs
    return args, {**kwargs, "dilation": (2,) * dims}
