"""``backend="openvino"``: a network converted and compiled by OpenVINO for the CPU.

The filters call a network by method (``stage1`` and ``fuse`` for MSTFN, ``forward`` for STIFN), so
each method becomes its own OpenVINO graph and the filters' window engine stays as it is: Stage-I
results are still cached and reused by MSTFN's neighbouring frames.

- Conversion: ``openvino.convert_model`` traces the PyTorch module once per method with dynamic
  height and width; the result is saved as OpenVINO IR under the cache folder, keyed by the
  architecture, the method and a hash of every weight, so later runs (and other nodes) skip it.
- Compilation: per input shape (a clip has one, a tiled one up to four) with the precision hint
  (``f32``, or ``bf16`` where the CPU computes it natively; ``f32`` for the methods that
  ``precision="auto"`` keeps in float32, MSTFN's Stage I), ``num_streams`` OpenVINO streams and
  ``num_streams x threads`` threads; compiled blobs are cached by OpenVINO itself in the same
  folder (``CACHE_DIR``), keyed by graph, shape and settings; compiled models are shared by every
  node of the process.
- Each VapourSynth thread runs its own infer request, so outputs do not depend on the order or
  the thread frames are requested from.

The cache folder is ``$VSRESTORE_OPENVINO_CACHE``, else ``$XDG_CACHE_HOME/vsrestore/openvino``
(``~/.cache/vsrestore/openvino``). MSITF does not run here (see :data:`UNSUPPORTED`).
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# The methods the filters call, per architecture, and each one's input channels (None: the
# network's feature width) for the dynamic-shape conversion.
METHODS = {"mstfn": ("stage1", "fuse"), "stifn": ("forward",)}
UNSUPPORTED = {
    "msitf": "MSITF stays on backend='torch': its deformable convolutions (pcd_align, ConvBLSTM) build "
             "their row bands and sampling grids, and its Swin trunk its shifted-window masks, from the "
             "frame size in Python, so it converts only as a graph fixed to one traced size (the tiny "
             "preset took 104 s to convert on 2 busy cores), not with dynamic height and width",
}
_COMPILED_MAX = 16


class BackendError(ValueError):
    """The OpenVINO back-end cannot run this network here; the message says why."""


def cache_dir() -> Path:
    """Where converted and compiled models are kept."""
    explicit = os.environ.get("VSRESTORE_OPENVINO_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vsrestore" / "openvino"


def _openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise BackendError("the openvino package is not installed: pip install openvino "
                           "(or vsrestore[openvino]), or use backend='torch'") from None
    return openvino


def available() -> bool:
    """Whether the ``openvino`` package can be imported."""
    try:
        _openvino()
    except BackendError:
        return False
    return True


class _Method(nn.Module):
    """``net.<method>`` as a module's forward (what the converter traces)."""

    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return getattr(self.net, self.method)(*args)


def weights_digest(net: nn.Module) -> str:
    """sha256 over the class, the config and every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.sha256()
    h.update(type(net).__qualname__.encode())
    h.update(repr(getattr(net, "config", None)).encode())
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else tensor.dtype).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:32]


# Compiled models of the process, shared by nodes: (ir path, shapes, settings) -> CompiledModel.
_compiled: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


class OpenVINONetwork:
    """Calls ``method(*tensors)`` of a network through OpenVINO (see the module docstring)."""

    def __init__(
        self, net: nn.Module, arch: str, device: torch.device, dtype: torch.dtype, *, threads: int = 1,
        num_streams: int = 1, fp32_methods: frozenset[str] = frozenset(),
    ) -> None:
        if device.type != "cpu":
            raise BackendError(f"OpenVINO runs on the CPU here, not on {device}; use backend='torch' for CUDA")
        if arch in UNSUPPORTED:
            raise BackendError(UNSUPPORTED[arch])
        if arch not in METHODS:
            raise BackendError(f"only registered MSTFN and STIFN networks convert (got {type(net).__name__}); "
                               f"use backend='torch'")
        if dtype not in (torch.float32, torch.bfloat16):
            raise BackendError(f"precision {dtype} is not an OpenVINO CPU precision here (fp32, or bf16 "
                               f"where the CPU computes it)")
        self.ov = _openvino()
        self.core = self.ov.Core()
        self.folder = cache_dir()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.core.set_property({"CACHE_DIR": str(self.folder / "compiled")})
        except OSError as exc:
            raise BackendError(f"cannot use the cache folder {self.folder}: {exc.strerror or exc}") from None
        self.net = net.float().eval()
        self.arch = arch
        self.hint = "bf16" if dtype == torch.bfloat16 else "f32"
        self.config = {
            "INFERENCE_PRECISION_HINT": self.hint,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": str(num_streams),
            "INFERENCE_NUM_THREADS": str(max(1, threads * num_streams)),
            "ENABLE_CPU_PINNING": "NO",  # VapourSynth's threads and other processes share the cores
        }
        self.fp32_methods = fp32_methods  # compiled with the f32 hint whatever ``dtype`` is
        self.digest = weights_digest(self.net)
        self._models: dict[str, Any] = {}
        self._local = threading.local()

    def _ir(self, method: str, args: tuple[torch.Tensor, ...]) -> Any:
        """The converted graph of ``method`` with dynamic height and width (read from or written to the cache)."""
        model = self._models.get(method)
        if model is not None:
            return model
        path = self.folder / f"{self.arch}-{method}-{self.digest}-ov{_version(self.ov)}.xml"
        with _lock:
            if path.exists():
                model = self.core.read_model(str(path))
            else:
                shapes = [self.ov.PartialShape([1, int(a.shape[1]), -1, -1]) for a in args]
                try:
                    with torch.no_grad(), warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # tracer warnings about shape checks
                        model = self.ov.convert_model(_Method(self.net, method), example_input=tuple(args),
                                                      input=shapes)
                except Exception as exc:  # noqa: BLE001 - the converter raises many kinds
                    raise BackendError(f"OpenVINO could not convert {self.arch}.{method}: {exc}") from None
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.xml")
                self.ov.save_model(model, str(tmp), compress_to_fp16=False)
                os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
                os.replace(tmp, path)
                model = self.core.read_model(str(path))  # as later runs see it (same compiled-blob key)
            self._models[method] = model
        return model

    def _compiled_for(self, method: str, args: tuple[torch.Tensor, ...]) -> Any:
        shapes = tuple(tuple(int(d) for d in a.shape) for a in args)
        config = {**self.config, "INFERENCE_PRECISION_HINT": "f32"} if method in self.fp32_methods else self.config
        key = (self.arch, method, self.digest, shapes, tuple(sorted(config.items())))
        with _lock:
            compiled = _compiled.get(key)
            if compiled is not None:
                _compiled.move_to_end(key)
                return compiled
        ir = self._ir(method, args).clone()
        ir.reshape({i: self.ov.PartialShape(list(s)) for i, s in enumerate(shapes)})
        compiled = self.core.compile_model(ir, "CPU", config)
        with _lock:
            compiled = _compiled.setdefault(key, compiled)
            while len(_compiled) > _COMPILED_MAX:
                _compiled.popitem(last=False)
        return compiled

    def __call__(self, method: str, *args: torch.Tensor) -> torch.Tensor:
        if method not in METHODS[self.arch]:
            raise BackendError(f"{self.arch} has no converted method {method!r}")
        args = tuple(a.detach().to("cpu", torch.float32).contiguous() for a in args)
        compiled = self._compiled_for(method, args)
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        request = requests.get(id(compiled))
        if request is None or request[0] is not compiled:
            request = requests[id(compiled)] = (compiled, compiled.create_infer_request())
        result = request[1].infer([a.numpy() for a in args], share_inputs=True)
        return torch.from_numpy(np.array(result[compiled.output(0)], dtype=np.float32, copy=True))


def _version(ov: Any) -> str:
    return str(getattr(ov, "__version__", "0")).split("-")[0]
