"""Chunks as Ray tasks: on a local Ray instance or a cluster (``pip install 'vsrestore[ray]'``).

Each task carries its :class:`ChunkTask` (script path, arguments, frame range, encoder settings) and
the script's bytes. On the node it runs the same worker process as a local render: from the
script's own path when the node has the same file (shared storage or the same image), else from a
copy in a temporary folder (then the files the script opens must exist on the node under the paths
it uses). The segment comes back through Ray's object store, or, with ``shared=True``, is written
straight into the work directory, which every node must then mount at the same path.

Every node needs the driver's Python environment (vsrestore, VapourSynth and its plugins, torch,
PyAV): the same container image, or a Ray ``runtime_env`` (``runtime_env=``, ``--ray-runtime-env``).
"""
from __future__ import annotations

import hashlib
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .pool import Event
from .process import WorkerProcess
from .worker import ChunkTask

INSTALL_HINT = "--ray needs the optional package ray: pip install 'vsrestore[ray]' (or pip install 'ray>=2.9')"


def import_ray() -> Any:
    """The ``ray`` module, or a ValueError saying what to install."""
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return ray


def run_on_node(task_json: str, script_bytes: bytes, progress: Any, shared: bool) -> dict[str, Any]:
    """The body of a Ray task: one chunk through a worker process on whichever node runs it."""
    task = ChunkTask.from_json(task_json)
    tmp = Path(tempfile.mkdtemp(prefix=f"vsrestore-chunk{task.chunk}-"))
    try:
        script = Path(task.script)
        if not (script.is_file() and hashlib.sha256(script.read_bytes()).hexdigest() == task.script_sha256):
            copy = tmp / script.name
            copy.write_bytes(script_bytes)
            task.script = str(copy)
        if not shared:
            task.segment = str(tmp / Path(task.segment).name)
        task.parent = os.getpid()  # the worker exits when this task process is killed
        proc = WorkerProcess(task, tmp / "chunk.log")
        last = [0.0]

        def on_frames(n: int) -> None:
            now = time.monotonic()
            if progress is not None and now - last[0] >= 0.5:  # a few actor calls a second at most
                last[0] = now
                progress.update.remote(task.chunk, n)

        outcome = proc.follow(on_frames)
        host = socket.gethostname()
        if not outcome.ok:
            return {"ok": False, "message": f"{outcome.message} (on {host})", "permanent": outcome.permanent}
        data = None if shared else Path(task.segment).read_bytes()
        return {"ok": True, "frames": outcome.frames, "data": data, "host": host}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Progress:
    """A tiny actor: tasks post their frame counts, the driver takes them twice a second."""

    def __init__(self) -> None:
        self.frames: dict[int, int] = {}

    def update(self, chunk: int, frames: int) -> None:
        self.frames[chunk] = frames

    def take(self) -> dict[int, int]:
        out, self.frames = self.frames, {}
        return out


class RayPool:
    """Chunk tasks on Ray. ``address``: ``"local"`` starts a Ray instance on this machine (unless this
    process already called ``ray.init``), ``"auto"`` joins the cluster this machine belongs to, anything
    else is a cluster address (``ray://head:10001`` or ``head:6379``)."""

    def __init__(self, address: str, *, workers: int | None, threads: int, script: Path,
                 runtime_env: dict[str, Any] | None = None, shared: bool = False) -> None:
        ray = import_ray()
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"runtime_env": runtime_env, "log_to_driver": False,
                                      "include_dashboard": False}
            if address != "local":
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError
                what = "start a local Ray instance" if address == "local" else f"join the Ray cluster at {address}"
                raise ValueError(f"cannot {what}: {' '.join(str(exc).split())[:300]}") from None
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = workers or max(1, cpus // threads)
        where = "a local Ray instance" if address == "local" else f"the Ray cluster at {address}"
        self.name = f"{self.slots} Ray task{'s' if self.slots != 1 else ''} at a time on {where} ({cpus} CPUs)"
        self.threads = threads
        self.shared = shared
        self.script_bytes = Path(script).read_bytes()
        self.events: queue.Queue[Event] = queue.Queue()
        self._remote = ray.remote(run_on_node).options(num_cpus=threads, max_retries=0)
        self._progress = ray.remote(num_cpus=0)(_Progress).remote()
        self._refs: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_progress, daemon=True)
        self._poller.start()

    def submit(self, task: ChunkTask) -> None:
        ref = self._remote.remote(task.to_json(), self.script_bytes, self._progress, self.shared)
        with self._lock:
            self._refs[task.chunk] = ref
        threading.Thread(target=self._wait, args=(task.chunk, ref), daemon=True).start()

    def _wait(self, chunk: int, ref: Any) -> None:
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a node or worker died, the task was cancelled
            message = " ".join(str(exc).split())[:300] or type(exc).__name__
            self.events.put(Event("failed", chunk, message=f"the Ray task failed: {type(exc).__name__}: {message}"))
            return
        finally:
            with self._lock:
                self._refs.pop(chunk, None)
        if result["ok"]:
            self.events.put(Event("done", chunk, frames=result["frames"], data=result["data"]))
        else:
            self.events.put(Event("failed", chunk, message=result["message"], permanent=result["permanent"]))

    def _poll_progress(self) -> None:
        while not self._stop.wait(0.5):
            try:
                frames = self.ray.get(self._progress.take.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - progress is best effort
                continue
            for chunk, n in frames.items():
                self.events.put(Event("progress", chunk, frames=n))

    def cancel_all(self) -> None:
        with self._lock:
            refs = list(self._refs.values())
        for ref in refs:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        self._stop.set()
        self.cancel_all()
        self._poller.join(timeout=5)
        try:
            self.ray.kill(self._progress)
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass
        if self.started:
            self.ray.shutdown()
