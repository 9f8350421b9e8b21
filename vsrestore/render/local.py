"""Chunks as local worker processes, ``slots`` at a time."""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

from .pool import Event
from .process import WorkerProcess
from .worker import ChunkTask


def default_workers() -> int:
    """One worker per two cores (each worker's filters use threads too), at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


class LocalPool:
    """Each task is a ``python -m vsrestore.render.worker`` child of this process; a thread per task
    follows its report. Logs go to ``<work dir>/chunk-NNNNN.log``."""

    def __init__(self, workers: int, work_dir: Path) -> None:
        self.slots = workers
        self.name = f"{workers} local worker{'s' if workers != 1 else ''}"
        self.work_dir = Path(work_dir)
        self.events: queue.Queue[Event] = queue.Queue()
        self._running: dict[int, WorkerProcess] = {}
        self._lock = threading.Lock()

    def submit(self, task: ChunkTask) -> None:
        task.parent = os.getpid()
        proc = WorkerProcess(task, self.work_dir / f"chunk-{task.chunk:05d}.log")
        with self._lock:
            self._running[task.chunk] = proc
        threading.Thread(target=self._follow, args=(task.chunk, proc), daemon=True).start()

    def _follow(self, chunk: int, proc: WorkerProcess) -> None:
        try:
            outcome = proc.follow(lambda n: self.events.put(Event("progress", chunk, frames=n)))
        except Exception as exc:  # noqa: BLE001 - reading a pipe failed: count it as a failed try
            proc.kill()
            outcome = None
            self.events.put(Event("failed", chunk, message=f"lost the worker's report: {exc}"))
        finally:
            with self._lock:
                self._running.pop(chunk, None)
        if outcome is None:
            return
        if outcome.ok:
            self.events.put(Event("done", chunk, frames=outcome.frames))
        else:
            self.events.put(Event("failed", chunk, message=outcome.message, permanent=outcome.permanent))

    def worker_pids(self) -> dict[int, int]:
        """Chunk -> pid of its running worker (tests kill one)."""
        with self._lock:
            return {chunk: proc.pid for chunk, proc in self._running.items()}

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            proc.kill()
        for proc in running:
            proc.proc.wait()

    def close(self) -> None:
        self.cancel_all()
