"""Metrics of vsrestore.evaluation.metrics against known values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vsrestore.evaluation.metrics import psnr, rgb_to_y, ssim


def test_psnr_of_a_constant_error() -> None:
    a = np.full((32, 32, 3), 100, np.uint8)
    assert psnr(a, a + 1, 255) == pytest.approx(48.1308036, abs=1e-6)  # 20 log10(255)
    assert psnr(a + 1, a, 255) == psnr(a, a + 1, 255)
    # uint8 inputs must not wrap around: 0 - 1 is -1, not 255
    zeros, ones = np.zeros(4, np.uint8), np.ones(4, np.uint8)
    assert psnr(zeros, ones, 255) == pytest.approx(48.1308036, abs=1e-6)
    assert psnr(a, a, 255) == math.inf
    assert psnr(np.zeros(8), np.full(8, 0.1), 1.0) == pytest.approx(20.0, abs=1e-9)


def test_psnr_of_gaussian_noise() -> None:
    rng = np.random.default_rng(0)
    sigma = 5.0
    clean = np.full((1000, 1000), 128.0)
    noisy = clean + rng.normal(0, sigma, clean.shape)
    assert psnr(clean, noisy, 255) == pytest.approx(20 * math.log10(255 / sigma), abs=0.05)


def test_psnr_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)), 1.0)


def test_ssim_identical_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (40, 50, 3))
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert ssim(a, a, 255) == 1.0
    assert ssim(a[..., 0], a[..., 0], 255) == 1.0
    assert ssim(a, b, 255) == ssim(b, a, 255)
    assert 0.0 < ssim(a, b, 255) < 1.0


def test_ssim_of_constant_images_is_the_luminance_term() -> None:
    for x, y, peak in [(100.0, 110.0, 255.0), (0.2, 0.5, 1.0), (1000.0, 900.0, 1023.0)]:
        c1 = (0.01 * peak) ** 2
        expected = (2 * x * y + c1) / (x * x + y * y + c1)  # contrast-structure term is C2/C2 = 1
        got = ssim(np.full((16, 20), x), np.full((16, 20), y), peak)
        assert got == pytest.approx(expected, abs=1e-9)


def test_ssim_is_mean_of_channels() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, (24, 24, 3))
    b = np.clip(a + rng.normal(0, [0.02, 0.1, 0.3], a.shape), 0, 1)
    per_channel = [ssim(a[..., c], b[..., c], 1.0) for c in range(3)]
    assert ssim(a, b, 1.0) == pytest.approx(np.mean(per_channel), abs=1e-12)
    assert per_channel[0] > per_channel[1] > per_channel[2]


def test_ssim_window_is_valid_only() -> None:
    # without padding a corner pixel is seen by a single window (at its lowest weight), the
    # centre pixel by all of them, so the same error costs less in the corner
    base = np.full((21, 21), 100.0)
    centre, corner = base.copy(), base.copy()
    centre[10, 10] += 50
    corner[0, 0] += 50
    assert ssim(base, corner, 255) > ssim(base, centre, 255)
    with pytest.raises(ValueError):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)), 1.0)


@pytest.mark.parametrize("peak", [255.0, 1.0, 1023.0, 65535.0])
def test_rgb_to_y_against_the_formula(peak: float) -> None:
    colours = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float64) * peak
    y = rgb_to_y(colours[:, None, :], peak)[:, 0]  # (5, 1, 3) -> (5, 1)
    scale = peak / 255
    expected = np.array([235, 16, 16 + 65.481, 16 + 128.553, 16 + 24.966]) * scale
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # 8-bit: the familiar 16 + (65.481 R + 128.553 G + 24.966 B) / 255
    if peak == 255.0:
        rgb = np.array([[[12, 200, 90]]], np.float64)
        expected_y = 16 + (65.481 * 12 + 128.553 * 200 + 24.966 * 90) / 255
        assert rgb_to_y(rgb, 255)[0, 0] == pytest.approx(expected_y, rel=1e-12)
