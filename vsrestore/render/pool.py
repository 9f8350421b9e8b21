"""What a pool of chunk workers reports to the driver, whichever runs them (local processes, Ray)."""
from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Literal, Protocol

from .worker import ChunkTask


@dataclass(frozen=True)
class Event:
    """``progress``: ``frames`` written so far by the chunk's current try; ``done``: the segment is
    written (``data`` holds its bytes when it came back through Ray, else it is at ``task.segment``);
    ``failed``: ``message`` says why, ``permanent`` when a retry cannot help."""

    kind: Literal["progress", "done", "failed"]
    chunk: int
    frames: int = 0
    message: str = ""
    permanent: bool = False
    data: bytes | None = None


class Pool(Protocol):
    """Runs chunk tasks concurrently and puts :class:`Event` objects on ``events``."""

    events: queue.Queue[Event]
    slots: int  # tasks it runs at once
    name: str  # for the log line, e.g. "2 local workers"

    def submit(self, task: ChunkTask) -> None: ...

    def cancel_all(self) -> None:
        """Stop every running task (their segments are left as .part files and never used)."""
        ...

    def close(self) -> None: ...
