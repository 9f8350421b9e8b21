"""The models that ship inside the package, and the user's own model folders.

Shipped weights are package data (``vsrestore/weights/``), so a wheel carries them. Each is listed in
``vsrestore/weights/manifest.json`` with its sha256 and contract (architecture, preset, ``in_bits``
or ``qp``); a file that does not match its hash is refused. Folders in ``$VSRESTORE_WEIGHTS`` add
models (every ``*.safetensors`` there, named by file stem); their names may not replace a shipped
one: such a file is skipped with a warning (load it by its path instead).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_NAME = "manifest.json"
# Contract fields a manifest entry may carry (read from the file's metadata when it is added).
CONTRACT_KEYS = ("task", "in_bits", "out_bits", "qp", "codec", "degradation")


@dataclass(frozen=True)
class ModelEntry:
    """A model that can be named instead of a path: shipped (with a hash) or from a user folder."""

    name: str
    path: Path
    arch: str | None = None
    contract: Mapping[str, Any] = field(default_factory=dict)
    sha256: str | None = None  # shipped models only
    preset: str | None = None  # the architecture's named config it was trained with

    @property
    def shipped(self) -> bool:
        return self.sha256 is not None


def _read_manifest(folder: Path) -> dict[str, ModelEntry]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {
        name: ModelEntry(name, folder / e["file"], e.get("arch"), dict(e.get("contract", {})), e["sha256"], e.get("preset"))
        for name, e in raw.get("models", {}).items()
    }


def _user_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("VSRESTORE_WEIGHTS", "").split(os.pathsep) if p]


_WARNED: set[Path] = set()  # user files already reported as shadowed (each is reported once)


def catalogue() -> dict[str, ModelEntry]:
    """Every model that can be named: the shipped ones, then those in ``$VSRESTORE_WEIGHTS``."""
    found = _read_manifest(WEIGHTS_DIR)
    for folder in _user_dirs():
        for path in sorted(folder.glob("*.safetensors")):
            if path.stem in found and found[path.stem].shipped:
                if path in _WARNED:
                    continue
                _WARNED.add(path)
                warnings.warn(
                    f"vsrestore: {path} is not used as {path.stem!r}: that name is a shipped model "
                    f"(load the file by its path to use it)",
                    stacklevel=2,
                )
                continue
            found.setdefault(path.stem, ModelEntry(path.stem, path))
    return found


def shipped_models() -> dict[str, Path]:
    """Names of the models that can be loaded by name, and their files."""
    return {name: entry.path for name, entry in catalogue().items()}


def find(arch: str, preset: str | None = None, **contract: Any) -> list[ModelEntry]:
    """The shipped models of ``arch`` (and ``preset``) whose contract has every given value (e.g. ``in_bits=8``)."""
    return [
        e for e in catalogue().values()
        if e.shipped and e.arch == arch and (preset is None or e.preset == preset)
        and all(e.contract.get(k) == v for k, v in contract.items())
    ]


_VERIFIED: dict[tuple[Path, int, int], str] = {}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(entry: ModelEntry) -> None:
    """Refuse a shipped file whose content is not what the manifest lists (checked once per file state)."""
    if entry.sha256 is None:
        return
    if not entry.path.is_file():
        raise ValueError(f"shipped model {entry.name!r} is listed but its file {entry.path} is missing; reinstall vsrestore")
    st = entry.path.stat()
    key = (entry.path, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_of(entry.path)
    if _VERIFIED[key] != entry.sha256:
        raise ValueError(
            f"shipped model {entry.name!r} ({entry.path}) does not match its sha256 in the manifest "
            f"(file changed or corrupted); reinstall vsrestore"
        )


def add_to_manifest(path: str | os.PathLike[str], metadata: Mapping[str, Any], folder: Path = WEIGHTS_DIR) -> ModelEntry:
    """List ``path`` (a ``.safetensors`` in ``folder``) in the manifest with its hash and contract."""
    path = Path(path)
    if path.parent.resolve() != folder.resolve():
        raise ValueError(f"{path} must be inside {folder} to ship")
    manifest_path = folder / MANIFEST_NAME
    raw = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"models": {}}
    contract = {k: metadata[k] for k in CONTRACT_KEYS if k in metadata}
    preset = (metadata.get("training") or {}).get("config")
    raw["models"][path.stem] = {
        "file": path.name, "sha256": sha256_of(path), "arch": metadata["arch"], "contract": contract,
        **({"preset": preset} if preset else {}),
    }
    raw["models"] = dict(sorted(raw["models"].items()))
    manifest_path.write_text(json.dumps(raw, indent=2) + "\n")
    return _read_manifest(folder)[path.stem]
