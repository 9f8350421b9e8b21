"""The work directory's manifest: the plan, each chunk's state and segment, written atomically.

A chunk is ``done`` only after its segment was completely written, decoded to the expected frame
count and renamed from its ``.part`` name; the manifest records the segment's size, so a resumed run
redoes a chunk whose file went missing or changed. The manifest is replaced with ``os.replace``
after an fsync, so a crash leaves the old or the new one, never half of each.
"""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .plan import Chunk

VERSION = 1
State = Literal["pending", "done"]
MANIFEST = "manifest.json"


@dataclass
class ChunkRecord:
    """One chunk in the manifest."""

    index: int
    start: int
    end: int
    state: State = "pending"
    segment: str = ""  # file name in the work directory, set when done
    bytes: int = 0
    tries: int = 0  # attempts so far, over all runs

    @property
    def chunk(self) -> Chunk:
        return Chunk(self.index, self.start, self.end)

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


@dataclass
class Manifest:
    """What a render is (``job``: script, arguments, output clip, encoder) and how far it got."""

    job: dict[str, Any]
    chunks: list[ChunkRecord]
    cuts: str = ""  # how the scene cuts were found
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        """Write atomically: a temporary file, fsync, rename over the old manifest."""
        path = Path(folder) / MANIFEST
        tmp = path.with_suffix(".json.tmp")
        data = json.dumps(asdict(self), indent=1, sort_keys=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """The manifest in ``folder``, None when there is none; a ValueError when it is unreadable."""
        path = Path(folder) / MANIFEST
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") != VERSION:
                raise ValueError(f"version {raw.get('version')!r}, this vsrestore writes {VERSION}")
            chunks = [ChunkRecord(**c) for c in raw["chunks"]]
            return cls(job=raw["job"], chunks=chunks, cuts=raw.get("cuts", ""), extra=raw.get("extra", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the manifest {path} is unreadable ({exc}); remove the folder to start over") from None

    @property
    def done_frames(self) -> int:
        return sum(c.frames for c in self.chunks if c.state == "done")


def job_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first job field that differs between a manifest and this run, as words; None when equal."""
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key} was {old.get(key)!r}, now {new.get(key)!r}"
    return None


class WorkDirLock:
    """An exclusive ``flock`` on the work directory: two renders never share one. The kernel drops it
    when the process dies, so a killed run never leaves a stale lock behind."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "lock"
        self.fh: Any = None

    def __enter__(self) -> WorkDirLock:
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise ValueError(f"another vsrestore render is using the work directory {self.path.parent}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
