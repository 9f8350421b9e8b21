"""Starting a worker process for one chunk and following its report until it ends.

Used by both the local pool (:mod:`.local`) and the Ray tasks (:mod:`.ray_backend`), so a chunk
runs the same way on this machine and on a cluster node.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .worker import EXIT_PERMANENT, ChunkTask, thread_env


@dataclass(frozen=True)
class Outcome:
    """How a worker ended: ``frames`` written when ``ok``, else a one-line ``message``."""

    ok: bool
    frames: int = 0
    message: str = ""
    permanent: bool = False


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


class WorkerProcess:
    """``python -m vsrestore.render.worker`` for one :class:`ChunkTask`, its stderr appended to ``log``."""

    def __init__(self, task: ChunkTask, log: Path) -> None:
        self.task = task
        self.log = Path(log)
        env = dict(os.environ, **thread_env(task.threads))
        with open(self.log, "ab") as err:
            err.write(f"--- chunk {task.chunk}: frames {task.start}..{task.end}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vsrestore.render.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, text=True,
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(task.to_json())
        self.proc.stdin.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def follow(self, on_frames: Callable[[int], None]) -> Outcome:
        """Read the worker's report until it exits; ``on_frames(k)`` gets the frames written so far."""
        assert self.proc.stdout is not None
        done: int | None = None
        error: dict | None = None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "frames" in msg:
                on_frames(int(msg["frames"]))
            elif "done" in msg:
                done = int(msg["done"])
            elif "error" in msg:
                error = msg
        status = self.proc.wait()
        if status == 0 and done is not None:
            return Outcome(True, frames=done)
        if error is not None:
            return Outcome(False, message=str(error["error"]), permanent=bool(error.get("permanent")))
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
            message = f"the worker was killed ({name})"
        else:
            message = f"the worker exited with status {status}"
        last = _last_line(self.log)
        return Outcome(False, message=message + (f"; its log ends: {last}" if last else ""),
                       permanent=status == EXIT_PERMANENT)

    def kill(self) -> None:
        """Stop the worker at once (its partial segment stays a .part file and is never used)."""
        if self.proc.poll() is None:
            self.proc.kill()
