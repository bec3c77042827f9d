"""Slow, obviously correct reference implementations written straight from SPEC §5–§7.

These exist only to check the fast core. They are written for readability, not speed: the
weighted histogram filter loops over every pixel in Python (the one place in the project where
that is allowed), and everything is computed in float64 / Python floats, except where SPEC §7
says the upstream extension works in float32 (after the filter, up to the uint8 truncation of
the difference masks), which the oracle reproduces so that truncation boundaries agree.

Inputs may be numpy arrays or torch tensors; outputs are numpy arrays. ``settings`` is anything
with the six attributes of ``SoftInpaintingSettings`` (a ``types.SimpleNamespace`` will do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "kernel_weight_sums",
    "oracle_gaussian_kernel",
    "oracle_get_modified_nmask",
    "oracle_latent_blend",
    "oracle_latent_difference_masks",
    "oracle_smootherstep",
    "oracle_smoothstep",
    "oracle_weighted_histogram_filter",
    "to_numpy",
]


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A numpy copy of ``x`` (numpy array, torch tensor or nested sequence) in ``dtype``."""
    if hasattr(x, "detach"):  # a torch tensor; go through float64 so no value is rounded
        import torch

        x = x.detach().cpu().to(torch.float64).numpy()
    return np.array(x, dtype=dtype)


# ---------------------------------------------------------------- SPEC §7: the filter


def _center_pair(center: Any) -> tuple[int, int]:
    """(row, column) of the kernel centre; a plain int means the same for both (SPEC §7)."""
    if np.ndim(center) == 0:
        return int(center), int(center)
    row, col = (int(c) for c in np.asarray(center).reshape(-1))
    return row, col


def _window_mean(items: list[tuple[float, float]], pmin: float, pmax: float, min_width: float) -> float:
    """The overlap-weighted mean of one pixel's (value, weight) list, exactly as SPEC §7 words it."""
    items = sorted(items, key=lambda item: item[0])

    # Stack the weights into consecutive intervals [lo, hi) on [0, S].
    intervals = []
    total = 0.0
    for value, weight in items:
        lo = total
        total += weight
        intervals.append((value, lo, total))

    # The window, widened to min_width when narrower; upper clamp first, then the lower one.
    w_lo = total * pmin
    w_hi = total * pmax
    if w_hi - w_lo < min_width:
        mid = (w_lo + w_hi) / 2.0
        w_lo = mid - min_width / 2.0
        w_hi = mid + min_width / 2.0
        if w_hi > total:
            w_hi = total
            w_lo = total - min_width
        if w_lo < 0.0:
            w_lo = 0.0
            w_hi = min_width

    # Mean of the values weighted by how much of their interval lies in the window. A value whose
    # interval does not overlap (zero or negative overlap) is skipped, never multiplied by 0, so
    # an infinite value outside the window cannot produce NaN.
    weighted_sum = 0.0
    weight_sum = 0.0
    for value, lo, hi in intervals:
        overlap = min(hi, w_hi) - max(lo, w_lo)
        if overlap <= 0.0:
            continue
        weighted_sum += value * overlap
        weight_sum += overlap
    if weight_sum == 0.0:
        return 0.0
    return weighted_sum / weight_sum


def oracle_weighted_histogram_filter(img2d: Any, kernel: Any, center: Any, pmin: float = 0.0,
                                     pmax: float = 1.0, min_width: float = 1.0) -> np.ndarray:
    """SPEC §7 per pixel: the kernel window clipped to the image, then ``_window_mean``.

    Returns float64. Out-of-image neighbours do not exist (they are not zeros).
    """
    img = to_numpy(img2d)
    ker = to_numpy(kernel)
    if img.ndim != 2 or ker.ndim != 2:
        raise ValueError("the oracle filters one 2-D map with a 2-D kernel")
    c_row, c_col = _center_pair(center)
    height, width = img.shape
    k_height, k_width = ker.shape
    out = np.zeros((height, width), dtype=np.float64)
    for y in range(height):
        for x in range(width):
            items = []
            for ky in range(k_height):
                for kx in range(k_width):
                    iy = y + ky - c_row
                    ix = x + kx - c_col
                    if 0 <= iy < height and 0 <= ix < width:
                        items.append((float(img[iy, ix]), float(ker[ky, kx])))
            out[y, x] = _window_mean(items, pmin, pmax, min_width)
    return out


# ---------------------------------------------------------------- SPEC §6 step 4: the kernel


def oracle_gaussian_kernel(stddev_radius: float = 1.0, max_radius: int = 2) -> tuple[np.ndarray, int]:
    """``K(x, y) = max(0, (g(x²+y²) − g((r+1)²)) / (1 − g((r+1)²)))``, ``g(q) = exp(−q/σ²)``."""
    def g(q: float) -> float:
        return math.exp(-q / (stddev_radius * stddev_radius))

    g_zero = g((max_radius + 1.0) ** 2)
    size = 2 * max_radius + 1
    kernel = np.zeros((size, size), dtype=np.float64)
    for row in range(size):
        for col in range(size):
            dy = row - max_radius
            dx = col - max_radius
            kernel[row, col] = max(0.0, (g(dx * dx + dy * dy) - g_zero) / (1.0 - g_zero))
    return kernel, max_radius


# ---------------------------------------------------------------- SPEC §5: stage 1


def oracle_get_modified_nmask(settings: Any, nmask: Any, sigma: Any) -> np.ndarray:
    """``nmask ** (sigma ** mask_blend_power * mask_blend_scale)`` in float64."""
    base = to_numpy(nmask)
    sigma_value = float(to_numpy(sigma).reshape(-1)[0])
    exponent = sigma_value ** float(settings.mask_blend_power) * float(settings.mask_blend_scale)
    return base ** exponent


def _channel_norm(x: np.ndarray) -> np.ndarray:
    """L2 norm over the channel axis (1), keepdim."""
    return np.sqrt(np.sum(x * x, axis=1, keepdims=True))


def oracle_latent_blend(settings: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """SPEC §5 ``latent_blend`` in float64; ``t`` is ``[C, H, W]`` or ``[B, C, H, W]``."""
    a64 = to_numpy(a)
    b64 = to_numpy(b)
    t64 = to_numpy(t)
    if t64.ndim == 3:
        t2 = t64[None]
        t3 = t64[0][None, None]
    elif t64.ndim == 4:
        t2 = t64
        t3 = t64[:, 0:1]
    else:
        raise ValueError("t must be [C, H, W] or [B, C, H, W]")

    v = a64 * (1.0 - t2) + b64 * t2
    v_len = _channel_norm(v) + 1e-5
    p = float(settings.inpaint_detail_preservation)
    m = ((1.0 - t3) * _channel_norm(a64) ** p + t3 * _channel_norm(b64) ** p) ** (1.0 / p)
    return v * (m / v_len)


# ---------------------------------------------------------------- SPEC §6: stage 2


def oracle_smoothstep(x: Any) -> Any:
    """``x²(3 − 2x)``."""
    return x * x * (3 - 2 * x)


def oracle_smootherstep(x: Any) -> Any:
    """``x³(x(6x − 15) + 10)``."""
    return x * x * x * (x * (6 * x - 15) + 10)


def oracle_latent_difference_masks(settings: Any, nmask: Any, latent_orig: Any,
                                   latent_processed: Any, reference_channels: int | None = 4) -> np.ndarray:
    """SPEC §6 steps 1–7: the uint8 ``[B, H, W]`` adaptive masks at latent resolution.

    Step 3's distance is the channel norm times ``sqrt(reference_channels / C)`` (the same change
    per channel gives the same distance whatever the channel count; 4 channels: the plain norm,
    which ``reference_channels=None`` gives for any count).

    The filter runs in float64 and, like upstream, hands back float32; steps 6–7 then run in
    numpy float32 as upstream does, ending in truncation to uint8.

    0/0 (a zero threshold ``h`` where the distance is also 0) is NaN. Upstream casts it with
    numpy's ``astype(uint8)``, which gives 0 on x86 (the C cast of NaN is undefined, so that is a
    platform fact, not a rule). The oracle defines it explicitly as 0 — mask 0, "keep the
    original" — which is what the core's ``latent_difference_masks`` documents for that case.
    """
    scale = float(settings.mask_blend_scale)
    influence = float(settings.composite_mask_influence)
    threshold = float(settings.composite_difference_threshold)
    contrast = float(settings.composite_difference_contrast)

    # Steps 1–2: the per-pixel threshold scale s (upstream does this in float32).
    nm = to_numpy(nmask, np.float32)
    latent_mask = nm[0] if nm.ndim == 3 else nm[:, 0]
    s = np.float32(1.0) - np.clip(latent_mask, 0.0, 1.0) ** np.float32(scale / 2.0)
    s = np.float32(0.5 * (1.0 - influence)) + s * np.float32(influence)
    s = s / (np.float32(1.00001) - s)

    # Step 3: latent distance, float64 then float32 as upstream's ``distance_map.float()``.
    diff = to_numpy(latent_processed) - to_numpy(latent_orig)
    distance = np.sqrt(np.sum(diff * diff, axis=1))
    if reference_channels is not None:
        distance = distance * math.sqrt(reference_channels / diff.shape[1])
    distance = distance.astype(np.float32)

    kernel, center = oracle_gaussian_kernel(stddev_radius=1.5, max_radius=2)
    masks = []
    for i in range(distance.shape[0]):
        # Steps 4–5: two filter passes, each handing back float32 like upstream.
        d = oracle_weighted_histogram_filter(distance[i], kernel, center, 0.9, 1.0, 1.0).astype(np.float32)
        d = oracle_weighted_histogram_filter(d, kernel, center, 0.25, 0.75, 1.0).astype(np.float32)

        # Step 6: h, per item when s is batched and has that item, else item 0; 2-D s is shared.
        s_i = s
        if s.ndim == 3:
            s_i = s[i] if s.shape[0] > i else s[0]
        h = np.float32(threshold) * s_i

        # Step 7, in float32.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x = d / h
            x = np.float32(1.0) / (np.float32(1.0) + x ** np.float32(contrast))
            x = oracle_smootherstep(x).astype(np.float32)
            x = np.float32(1.0) - x
            y = np.float32(255.0) * x
        y = np.where(np.isnan(y), np.float32(0.0), y)
        masks.append(np.clip(np.trunc(y), 0, 255).astype(np.uint8))
    return np.stack(masks)


def kernel_weight_sums(kernel: Any, center: Any, shape: Sequence[int]) -> np.ndarray:
    """Total weight S of the clipped window at every pixel of a map of ``shape`` (for sanity checks)."""
    ones = np.ones(tuple(shape))
    ker = to_numpy(kernel)
    c_row, c_col = _center_pair(center)
    height, width = ones.shape
    out = np.zeros_like(ones)
    for y in range(height):
        for x in range(width):
            total = 0.0
            for ky in range(ker.shape[0]):
                for kx in range(ker.shape[1]):
                    iy, ix = y + ky - c_row, x + kx - c_col
                    if 0 <= iy < height and 0 <= ix < width:
                        total += ker[ky, kx]
            out[y, x] = total
    return out
