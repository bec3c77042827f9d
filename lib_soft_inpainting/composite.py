"""Stage 2 at latent resolution: how much each region changed, as a compositing mask (SPEC §6).

Mask values are uint8 with the host's overlay polarity: 255 = show the generated pixels,
0 = keep the original. Everything here runs on the latents' device; pictures are made later
(``pictures.py``).
"""

from __future__ import annotations

import math

import torch

from .histogram import accumulate_dtype_for, get_gaussian_kernel, weighted_histogram_filter
from .settings import SoftInpaintingSettings

__all__ = [
    "REFERENCE_CHANNELS",
    "difference_scale",
    "latent_difference_masks",
    "latent_distance",
    "smootherstep",
    "smoothstep",
    "static_mask_values",
]

_KERNEL_STDDEV = 1.5
_KERNEL_RADIUS = 2

REFERENCE_CHANNELS = 4
"""The channel count the difference threshold was made for (SD1, SD2, SDXL latents)."""


def smoothstep(x):
    """``x²(3 − 2x)``: a sigmoid-like ramp on [0, 1] (inputs should be clamped there)."""
    return x * x * (3 - 2 * x)


def smootherstep(x):
    """``x³(x(6x − 15) + 10)``: like smoothstep with zero second derivative at both ends."""
    return x * x * x * (x * (6 * x - 15) + 10)


def _first_channel(nmask: torch.Tensor) -> torch.Tensor:
    """``[H, W]`` from a ``[C, H, W]`` mask, ``[B, H, W]`` from a ``[B, C, H, W]`` one, as float32."""
    if nmask.dim() in (3, 4) and nmask.shape[-3] == 0:
        raise ValueError(f"soft inpainting: nmask {tuple(nmask.shape)} has no channels")
    if nmask.dim() == 3:
        return nmask[0].float()
    if nmask.dim() == 4:
        return nmask[:, 0].float()
    raise ValueError(f"soft inpainting: nmask must be [C, H, W] or [B, C, H, W], got {tuple(nmask.shape)}")


def difference_scale(settings: SoftInpaintingSettings, nmask: torch.Tensor) -> torch.Tensor:
    """The per-pixel factor ``s`` of the difference threshold (SPEC §6 step 2).

    With mask influence 0 it is 1 everywhere; with influence 1 it follows the painted mask,
    reaching 0 where the mask is fully white.
    """
    latent_mask = _first_channel(nmask)
    s = 1 - latent_mask.clamp(0, 1) ** (settings.mask_blend_scale / 2)
    influence = settings.composite_mask_influence
    s = 0.5 * (1 - influence) + s * influence
    return s / (1.00001 - s)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """``uint8(255·x)`` truncating like numpy's ``astype``; NaN (0/0: no change where no change is
    allowed, e.g. difference threshold 0) is defined as 0, keep the original — what upstream's
    cast produces on x86."""
    return torch.nan_to_num(255.0 * x, nan=0.0).clamp(0, 255).to(torch.uint8)


def latent_distance(latent_orig: torch.Tensor, latent_processed: torch.Tensor,
                    reference_channels: int | None = REFERENCE_CHANNELS) -> torch.Tensor:
    """How far each latent pixel moved: ``[B, H, W]`` float32, from ``[B, C, H, W]`` latents.

    The L2 norm over the channels (SPEC §6 step 3), scaled by ``sqrt(reference_channels / C)`` so
    that the same change per channel gives the same distance whatever the channel count: each
    channel of SD3/Flux latents (16) has about the spread of an SD1/SDXL channel (4), and the plain
    norm of a 16-channel change is twice that of a 4-channel one, which would halve what *Difference
    threshold* means. 4-channel latents are not scaled at all (bit for bit the upstream distance);
    ``reference_channels=None`` gives the plain norm for any channel count.
    """
    # A sum of squares: ``vector_norm`` over the channel axis is many times slower on the CPU.
    distance = (latent_processed.float() - latent_orig.float()).square_().sum(1).sqrt_()
    channels = latent_processed.shape[1]
    if reference_channels is not None and channels not in (0, reference_channels):
        distance.mul_(math.sqrt(reference_channels / channels))
    return distance


def latent_difference_masks(settings: SoftInpaintingSettings, nmask: torch.Tensor,
                            latent_orig: torch.Tensor, latent_processed: torch.Tensor, *,
                            reference_channels: int | None = REFERENCE_CHANNELS) -> torch.Tensor:
    """Adaptive compositing masks ``uint8 [B, H, W]`` from the latent change (SPEC §6 steps 1–7).

    The channel-norm distance between processed and original latents (per channel as for 4-channel
    latents, see :func:`latent_distance`) is smoothed by two weighted histogram passes (the mean of
    the top unit of weight, then the inter-quartile mean) and mapped through
    ``1 − smootherstep(1 / (1 + (d / h)^contrast))`` with ``h`` = threshold · s.
    """
    if latent_orig.shape != latent_processed.shape:
        one_for_all = latent_orig.dim() == 4 and latent_orig.shape[0] == 1
        if one_for_all and latent_orig.shape[1:] == latent_processed.shape[1:]:
            latent_orig = latent_orig.expand_as(latent_processed)
        else:
            raise ValueError(f"soft inpainting: original latents {tuple(latent_orig.shape)} and sampled "
                             f"latents {tuple(latent_processed.shape)} differ in shape")
    if latent_processed.dim() != 4:
        raise ValueError(f"soft inpainting: latents must be [B, C, H, W], "
                         f"got {tuple(latent_processed.shape)}")
    s = difference_scale(settings, nmask.to(latent_processed.device))
    # A batched mask has one item for the whole batch or one per latent; upstream silently used
    # item 0 for the items a shorter mask batch lacks, which pairs masks with the wrong pictures.
    batch_mismatch = s.dim() == 3 and s.shape[0] not in (1, latent_processed.shape[0])
    if s.shape[-2:] != latent_processed.shape[-2:] or batch_mismatch:
        raise ValueError(f"soft inpainting: nmask {tuple(nmask.shape)} does not fit the latents "
                         f"{tuple(latent_processed.shape)} (another height or width, or a mask batch "
                         f"that is neither 1 nor the latents' batch)")

    distance = latent_distance(latent_orig, latent_processed, reference_channels)
    kernel, center = get_gaussian_kernel(stddev_radius=_KERNEL_STDDEV, max_radius=_KERNEL_RADIUS)
    acc = accumulate_dtype_for(distance.device)
    distance = weighted_histogram_filter(distance, kernel, center, 0.9, 1.0, 1.0, accumulate_dtype=acc)
    distance = weighted_histogram_filter(distance, kernel, center, 0.25, 0.75, 1.0, accumulate_dtype=acc)

    half_distance = settings.composite_difference_threshold * s
    x = distance / half_distance
    x = 1 / (1 + x ** settings.composite_difference_contrast)
    x = 1 - smootherstep(x)
    return _to_uint8(x)


def static_mask_values(settings: SoftInpaintingSettings, nmask: torch.Tensor) -> torch.Tensor:
    """Masks for already-decoded samples, where no latent distance exists (SPEC §6, static path).

    ``uint8(255 · clamp(nmask, 0, 1) ^ (preservation strength / 2))`` of the first channel:
    ``[1, H, W]`` for an unbatched mask, ``[B, H, W]`` for a batched one.
    """
    latent_mask = _first_channel(nmask)
    if latent_mask.dim() == 2:
        latent_mask = latent_mask[None]
    return _to_uint8(latent_mask.clamp(0, 1) ** (settings.mask_blend_scale / 2))
