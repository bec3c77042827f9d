"""Straightforward implementations kept only as yardsticks for the benchmarks.

* :func:`per_pixel_filter` is SPEC §7 written as it reads: a Python loop over every pixel that
  gathers the neighbours under the window clipped to the image, sorts them and walks the weight
  intervals. It is what the vectorised filter is measured against (nothing is slowed down on
  purpose: the map is read as Python lists, not element by element from numpy).
* :func:`per_pixel_difference_masks` is SPEC §6 steps 1–7 around that filter, the rest in numpy
  float32 as upstream does.
* :func:`float64_latent_blend` is upstream's formulation of SPEC §5 ``latent_blend``: the powered
  magnitudes are mixed in float64 so ``|x|^32`` cannot overflow (with the core's channel-norm
  kernels, or with ``torch.norm`` as upstream calls it).
* :func:`hard_blend` is what the host does without soft inpainting.

Settings are anything with the six attributes of ``SoftInpaintingSettings``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "float64_latent_blend",
    "hard_blend",
    "per_pixel_difference_masks",
    "per_pixel_filter",
    "reference_kernel",
    "upstream_modified_nmask",
]


def reference_kernel(stddev: float = 1.5, radius: int = 2) -> tuple[list[list[float]], int]:
    """SPEC §6 step 4: ``max(0, (g(q) − g((r+1)²)) / (1 − g((r+1)²)))`` with ``g(q) = exp(−q/σ²)``."""
    def g(q: float) -> float:
        return math.exp(-q / (stddev * stddev))

    floor = g((radius + 1) ** 2)
    offsets = range(-radius, radius + 1)
    kernel = [[max(0.0, (g(dx * dx + dy * dy) - floor) / (1.0 - floor)) for dx in offsets] for dy in offsets]
    return kernel, radius


def _window_mean(items: list[tuple[float, float]], pmin: float, pmax: float, min_width: float) -> float:
    """One pixel: the overlap-weighted mean of its (value, weight) pairs over the weight window."""
    items.sort(key=lambda item: item[0])
    total = sum(weight for _, weight in items)
    lo, hi = total * pmin, total * pmax
    if hi - lo < min_width:
        middle = (lo + hi) / 2
        lo, hi = middle - min_width / 2, middle + min_width / 2
        if hi > total:
            lo, hi = total - min_width, total
        if lo < 0:
            lo, hi = 0.0, min_width
    start = 0.0
    value_sum = weight_sum = 0.0
    for value, weight in items:
        end = start + weight
        overlap = min(end, hi) - max(start, lo)
        if overlap > 0:
            value_sum += value * overlap
            weight_sum += overlap
        start = end
    return value_sum / weight_sum if weight_sum > 0 else 0.0


def per_pixel_filter(img: np.ndarray, kernel: list[list[float]], center: int, pmin: float, pmax: float,
                     min_width: float = 1.0) -> np.ndarray:
    """SPEC §7 on one ``[H, W]`` map, pixel by pixel; float32 out, sums in Python floats."""
    rows = np.asarray(img, dtype=np.float32).tolist()
    height, width = len(rows), len(rows[0]) if rows else 0
    taps = [(ky - center, kx - center, weight)
            for ky, kernel_row in enumerate(kernel) for kx, weight in enumerate(kernel_row)]
    out = []
    for y in range(height):
        out_row = []
        for x in range(width):
            items = [(rows[y + dy][x + dx], weight) for dy, dx, weight in taps
                     if 0 <= y + dy < height and 0 <= x + dx < width]
            out_row.append(_window_mean(items, pmin, pmax, min_width))
        out.append(out_row)
    return np.array(out, dtype=np.float32).reshape(height, width)


def _numpy32(x: Any) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)


def per_pixel_difference_masks(settings: Any, nmask: Any, latent_orig: Any, latent_processed: Any
                               ) -> np.ndarray:
    """SPEC §6 steps 1–7 with the per-pixel filter: uint8 ``[B, H, W]``.

    0/0 (threshold 0) is NaN, stored as 0 (keep the original), the core's documented choice.
    """
    mask = _numpy32(nmask)
    latent_mask = mask[0] if mask.ndim == 3 else mask[:, 0]
    s = 1 - np.clip(latent_mask, 0, 1) ** np.float32(settings.mask_blend_scale / 2)
    influence = np.float32(settings.composite_mask_influence)
    s = np.float32(0.5) * (1 - influence) + s * influence
    s = s / (np.float32(1.00001) - s)

    orig, processed = _numpy32(latent_orig), _numpy32(latent_processed)
    distance = np.sqrt(np.sum((processed - orig) ** 2, axis=1))
    kernel, center = reference_kernel()
    masks = []
    for i, d in enumerate(distance):
        d = per_pixel_filter(d, kernel, center, 0.9, 1.0, 1.0)
        d = per_pixel_filter(d, kernel, center, 0.25, 0.75, 1.0)
        scale = s if s.ndim == 2 else s[i] if i < s.shape[0] else s[0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x = d / (np.float32(settings.composite_difference_threshold) * scale)
            x = 1 / (1 + x ** np.float32(settings.composite_difference_contrast))
            x = x * x * x * (x * (6 * x - 15) + 10)
            x = np.nan_to_num(255 * (1 - x), nan=0.0)
        masks.append(np.clip(x, 0, 255).astype(np.uint8))
    return np.stack(masks)


def upstream_modified_nmask(settings: Any, nmask: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """SPEC §5 ``nmask ** (sigma ** schedule_bias * strength)``, as upstream writes it (no clamp)."""
    return torch.pow(nmask, sigma ** settings.mask_blend_power * settings.mask_blend_scale)


def _channel_norm(x: torch.Tensor) -> torch.Tensor:
    """The channel-axis L2 norm (keepdim) as a sum of squares: the kernels the core uses too."""
    return x.square().sum(1, keepdim=True).sqrt()


def _upstream_channel_norm(x: torch.Tensor) -> torch.Tensor:
    """The channel-axis L2 norm (keepdim) the way upstream asks torch for it."""
    return torch.norm(x, p=2, dim=1, keepdim=True)


def float64_latent_blend(settings: Any, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, *,
                         upstream_norm: bool = False) -> torch.Tensor:
    """SPEC §5 ``latent_blend`` with the powered magnitudes mixed in float64 (upstream's formulation).

    By default the channel norms are the same sum-of-squares kernels the core uses, so the
    comparison isolates the formulation (float64 powers against float32 log-sum-exp).
    ``upstream_norm=True`` asks ``torch.norm`` for them as upstream does, which on the CPU is far
    slower for this shape than the formulation itself.
    """
    norm = _upstream_channel_norm if upstream_norm else _channel_norm
    if t.dim() == 3:
        t2, t3 = t[None], t[0:1][None]
    else:
        t2, t3 = t, t[:, 0:1]
    v = a * (1 - t2) + b * t2
    p = float(settings.inpaint_detail_preservation)
    v_len = norm(v).double().add_(1e-5)
    a_pow = norm(a).double().pow_(p).mul_(1 - t3)
    b_pow = norm(b).double().pow_(p).mul_(t3)
    scale = a_pow.add_(b_pow).pow_(1 / p).div_(v_len)
    return v.mul_(scale.to(v.dtype))


def hard_blend(nmask: torch.Tensor, mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The host's own per-step blend without soft inpainting: ``b·nmask + a·mask``, mask = 1 − nmask."""
    return b * nmask + a * mask
