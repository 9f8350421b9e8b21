"""Classical baselines and the banding measure for bit-depth enhancement.

- mid-rise reconstruction (each truncated sample moved to the middle of its quantisation step) and
  bit replication, computed exactly in integers;
- ``placebo.Deband`` (vs-placebo, libplacebo's debanding shader) on the mid-rise reconstruction, over
  a small grid of strengths, so that the table shows the strongest setting, not a default;
- CAMBI (vapoursynth-cambi, Netflix's Contrast Aware Multiscale Banding Index) on 10-bit luma.

vs-placebo needs a Vulkan device (on a machine without a GPU, Mesa's lavapipe: Debian's
``mesa-vulkan-drivers``); without one the plugin crashes the process instead of raising, so its
availability is probed once in a child process.
"""
from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import vapoursynth as vs

from .vsclips import rgb_clip, to_array

core = vs.core

# Deband strengths tried, as multiples of the input's quantisation step (libplacebo's threshold is
# in thousandths of full scale), and radii in pixels.
DEBAND_STEP_MULTIPLES = (0.5, 1.0, 2.0)
DEBAND_RADII = (16.0, 32.0)


def mid_rise(low: np.ndarray, in_bits: int) -> np.ndarray:
    """MSB-aligned uint16 samples truncated to ``in_bits``, plus half a quantisation step."""
    half = (1 << (15 - in_bits)) if in_bits < 16 else 0
    return (low.astype(np.uint32) + half).astype(np.uint16)


def bit_replication(low: np.ndarray, in_bits: int) -> np.ndarray:
    """The ``in_bits`` significant bits repeated down to bit 0 (0xA000 with 4 bits -> 0xAAAA)."""
    v = (low >> (16 - in_bits)).astype(np.uint32)
    out = np.zeros_like(v)
    for shift in range(16 - in_bits, -in_bits, -in_bits):
        out += (v << shift) if shift >= 0 else (v >> -shift)
    return np.minimum(out, 65535).astype(np.uint16)


_PROBE = (
    "import vapoursynth as vs; c = vs.core; "
    "c.placebo.Deband(c.std.BlankClip(format=vs.RGB48, width=32, height=32)).get_frame(0)"
)


@functools.cache
def placebo_available() -> bool:
    """True when ``placebo.Deband`` loads and finds a Vulkan device (probed in a child process)."""
    if not hasattr(core, "placebo"):
        return False
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def deband_grid(frames: np.ndarray, in_bits: int) -> Iterator[tuple[str, np.ndarray]]:
    """``placebo.Deband`` of uint16 RGB ``frames`` (the mid-rise reconstruction) at each grid point."""
    step = 1000.0 / (1 << in_bits)  # one quantisation step in libplacebo's threshold units
    clip = rgb_clip(frames)
    for multiple in DEBAND_STEP_MULTIPLES:
        for radius in DEBAND_RADII:
            out = core.placebo.Deband(clip, planes=7, threshold=multiple * step, radius=radius, grain=0.0)
            yield f"placebo.Deband (threshold {multiple:g} steps, radius {radius:g})", to_array(out)


@functools.cache
def cambi_available() -> bool:
    return hasattr(core, "cambi")


def cambi(frames: np.ndarray) -> float:
    """Mean CAMBI of RGB ``frames`` (uint8 or uint16), measured on their 10-bit BT.709 luma."""
    clip = core.resize.Point(rgb_clip(frames), format=vs.YUV420P10, matrix_s="709", range_s="limited",
                             dither_type="none")
    scored = core.cambi.Cambi(clip)
    return float(np.mean([f.props["CAMBI"] for f in scored.frames()]))
