"""Quality metrics on numpy arrays in float64: PSNR, SSIM and the BT.601 luma of SR papers.

Images are (H, W) or (H, W, C) arrays in [0, ``peak``] (any real dtype). For video, evaluate frame
by frame and average, as the papers do.
"""
from __future__ import annotations

import numpy as np

_SSIM_SIZE, _SSIM_SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak^2 / MSE)``; ``inf`` when identical."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * np.log10(float(peak) ** 2 / mse)


def _ssim_window() -> np.ndarray:
    k = np.arange(_SSIM_SIZE, dtype=np.float64) - _SSIM_SIZE // 2
    g = np.exp(-(k**2) / (2.0 * _SSIM_SIGMA**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the first two axes; the loop runs over the 11 taps only."""
    n = len(g)
    h, w = x.shape[0] - n + 1, x.shape[1] - n + 1
    rows = sum(g[k] * x[k : k + h] for k in range(n))
    return sum(g[k] * rows[:, k : k + w] for k in range(n))


def ssim(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Structural similarity (Wang et al. 2004), mean over the map.

    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering (no padding, as the
    authors' MATLAB code); images need at least 11x11 pixels. For (H, W, C) inputs the result is
    the mean of the per-channel SSIMs.
    """
    a, b = _pair(a, b)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < _SSIM_SIZE:
        raise ValueError(f"expected (H, W) or (H, W, C) of at least 11x11, got {a.shape}")
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    g = _ssim_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    ssim_map = num / den
    # equal-size channels: the mean of per-channel means is the mean of the whole map
    return float(np.mean(ssim_map))


def rgb_to_y(rgb: np.ndarray, peak: float = 255.0) -> np.ndarray:
    """BT.601 limited-range luma (..., H, W) of RGB (..., H, W, 3) in [0, peak], as SR papers use.

    MATLAB's ``rgb2ycbcr`` for 8-bit data is ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``
    (the coefficients are 219 x (0.299, 0.587, 0.114)). Writing it on normalised values
    ``r = R / peak`` and scaling back by ``peak / 255`` gives, for any peak,

        ``Y = (16 peak + 65.481 R + 128.553 G + 24.966 B) / 255``

    so white is ``235 peak / 255`` and black ``16 peak / 255``. Float64, not rounded.
    """
    x = np.asarray(rgb, dtype=np.float64)
    if x.shape[-1] != 3:
        raise ValueError(f"expected (..., 3), got shape {x.shape}")
    return (16.0 * peak + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
