"""Shared test fixtures: paths to the shared material beside the repository."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VSRESTORE_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared; the calling test skips when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared material not present: {path}")
    return path


@pytest.fixture(scope="session")
def mstfn_parity() -> dict[str, np.ndarray]:
    with np.load(shared_path("parity", "mstfn_official.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def msitf_parity() -> dict[str, np.ndarray]:
    with np.load(shared_path("parity", "msitf_official.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def single_thread():
    """Run a module on one torch thread: its tensors are tiny, and OpenMP threads contending with
    other processes on a 2-core machine made such tests several times slower, not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
