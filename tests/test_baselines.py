"""Bit-depth baselines and the banding measure of the evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from vsrestore.evaluation.baselines import bit_replication, cambi, cambi_available, deband_grid, mid_rise, placebo_available
from vsrestore.evaluation.evaluate import Result, keep_best_deband, markdown
from vsrestore.evaluation.metrics import psnr
from vsrestore.training.degrade import truncate_bits


def test_mid_rise_and_bit_replication_are_exact():
    low = np.array([0x0000, 0xA000, 0xF000], np.uint16)
    assert mid_rise(low, 4).tolist() == [0x0800, 0xA800, 0xF800]
    assert bit_replication(low, 4).tolist() == [0x0000, 0xAAAA, 0xFFFF]
    six = np.array([0b101101 << 10], np.uint16)
    assert bit_replication(six, 6).tolist() == [0b1011011011011011]
    assert mid_rise(np.array([0xFF00], np.uint16), 8).tolist() == [0xFF80]


def ramp(width: int = 256, height: int = 64, frames: int = 2) -> np.ndarray:
    """A slow diagonal 16-bit RGB ramp: the worst case for false contours."""
    yy, xx = np.mgrid[0:height, 0:width]
    v = 20000 + 8000 * (xx / width) + 2000 * (yy / height)
    return np.repeat(np.rint(np.stack([v, v * 1.1, v * 0.9], -1))[None].astype(np.uint16), frames, 0)


@pytest.mark.skipif(not placebo_available(), reason="vs-placebo or a Vulkan device (lavapipe) is missing")
def test_deband_grid_smooths_false_contours():
    gt = ramp()
    low = truncate_bits(gt, 16, 6)
    base = psnr(mid_rise(low, 6), gt, 65535.0)
    grid = dict(deband_grid(mid_rise(low, 6), 6))
    assert len(grid) == 6 and all(out.shape == gt.shape and out.dtype == np.uint16 for out in grid.values())
    assert max(psnr(out, gt, 65535.0) for out in grid.values()) > base + 1.0


@pytest.mark.skipif(not cambi_available(), reason="vapoursynth-cambi is missing")
def test_cambi_sees_banding_of_a_ramp_truncated_to_8_bits():
    # CAMBI looks for steps of a few 10-bit codes (the banding of 8-bit video), not for coarse ones.
    gt = ramp(width=512, height=128)
    assert cambi(truncate_bits(gt, 16, 8)) > 3 * cambi(gt)


def test_table_keeps_the_best_deband_setting_and_measures_against_mid_rise():
    rows = [
        Result("a", "mid-rise", 40.0, 0.9, 38.0, 0.9),
        Result("a", "placebo.Deband (threshold 1 steps, radius 16)", 40.5, 0.9, 38.1, 0.9),
        Result("a", "placebo.Deband (threshold 2 steps, radius 16)", 40.1, 0.9, 38.4, 0.9),
        Result("a", "vsrestore.mstfn", 41.0, 0.9, 39.0, 0.9),
    ]
    kept = [r.method for r in keep_best_deband(rows)]
    assert kept == ["mid-rise", "placebo.Deband (threshold 2 steps, radius 16)", "vsrestore.mstfn"]
    table = markdown("mstfn", rows, {"in_bits": 6}, "m")
    assert "| **average** | vsrestore.mstfn | 41.00 | +1.00 | 0.9000 | 39.00 | +1.00 | 0.9000 |" in table
