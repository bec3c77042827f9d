"""The workloads the benchmarks time: realistic inputs and the calls made on them.

A case is one latent size and batch on one device. The latents follow the host's shapes
(``[B, 4, H, W]``, or ``[B, 16, H, W]`` for SD3 and Flux; the picture is 8× larger on each side),
the mask is a soft-edged disc in the host's ``[C, H, W]`` layout, and the sampled latents differ
from the original mostly inside it, so the difference masks have a real transition band. Inputs
are seeded: every run measures the same work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask, latent_blend
from lib_soft_inpainting.composite import latent_difference_masks
from lib_soft_inpainting.pictures import (
    CompositePictures,
    adaptive_composite,
    mask_picture,
    overlay_with_mask,
    rebuild_overlay_images,
)

from . import reference

__all__ = ["LATENT_SCALE", "Case", "make_case"]

LATENT_SCALE = 8  # picture pixels per latent pixel, on each side (SD's VAE)
LATENT_CHANNELS = 4
BACKGROUND = "#ffffff"


@dataclass
class Case:
    """Inputs of one benchmark case, already on ``device``."""

    size: int
    batch: int
    device: torch.device
    settings: SoftInpaintingSettings
    nmask: torch.Tensor            # [C, H, W], 1 = regenerate
    mask: torch.Tensor             # 1 − nmask, as the host keeps it
    latent_orig: torch.Tensor      # [B, C, H, W]
    latent_processed: torch.Tensor  # [B, C, H, W]
    sigma: torch.Tensor            # [B], one noise level for the batch
    init_image: Image.Image        # RGB, picture size

    @property
    def picture_size(self) -> int:
        return self.size * LATENT_SCALE

    # ---- stage 1: one sampler step

    def hard_blend(self) -> torch.Tensor:
        """The host's own blend without soft inpainting."""
        return reference.hard_blend(self.nmask, self.mask, self.latent_orig, self.latent_processed)

    def stage1(self) -> torch.Tensor:
        """Ours: get_modified_nmask + latent_blend, as the glue calls them every step."""
        t = get_modified_nmask(self.settings, self.nmask, self.sigma[0])
        return latent_blend(self.settings, self.latent_orig, self.latent_processed, t)

    def stage1_float64(self) -> torch.Tensor:
        """Upstream's formulation: the same mask, the magnitudes mixed in float64 (our norm kernels)."""
        t = reference.upstream_modified_nmask(self.settings, self.nmask, self.sigma[0])
        return reference.float64_latent_blend(self.settings, self.latent_orig, self.latent_processed, t)

    def stage1_upstream(self) -> torch.Tensor:
        """Upstream's formulation with its ``torch.norm`` calls, as the built-in extension runs it."""
        t = reference.upstream_modified_nmask(self.settings, self.nmask, self.sigma[0])
        return reference.float64_latent_blend(self.settings, self.latent_orig, self.latent_processed, t,
                                              upstream_norm=True)

    # ---- stage 2: after sampling

    def difference_masks(self) -> torch.Tensor:
        """Ours: SPEC §6 steps 1–7 at latent resolution (uint8 [B, H, W] on the device)."""
        return latent_difference_masks(self.settings, self.nmask, self.latent_orig, self.latent_processed)

    def difference_masks_per_pixel(self) -> np.ndarray:
        """The per-pixel reference of the same (CPU, Python loops)."""
        return reference.per_pixel_difference_masks(self.settings, self.nmask, self.latent_orig,
                                                    self.latent_processed)

    def overlay_images(self) -> list[Image.Image]:
        """What the glue rebuilds from the init image before compositing."""
        size = self.picture_size
        return rebuild_overlay_images([self.init_image], BACKGROUND, None, 0, size, size)

    def post_sample(self) -> CompositePictures:
        """The whole post-sample hook: overlay images, difference masks, mask pictures, overlays."""
        size = self.picture_size
        return adaptive_composite(self.settings, self.nmask, self.latent_orig, self.latent_processed,
                                  self.overlay_images(), size, size, None)

    def pixel_stage(self, masks: np.ndarray) -> CompositePictures:
        """Only the picture work of the post-sample hook, from ready uint8 ``[B, H, W]`` masks."""
        size = self.picture_size
        overlays = self.overlay_images()
        result = CompositePictures([], [])
        for i, values in enumerate(masks):
            picture = mask_picture(values, size, size, None, overlays[0].size)
            result.masks.append(picture)
            result.overlays.append(overlay_with_mask(overlays[min(i, len(overlays) - 1)], picture))
        return result


def _soft_disc(size: int) -> torch.Tensor:
    """A disc covering the middle of the picture, with a grey rim a quarter of its radius wide."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    radius = torch.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    return ((0.35 - radius) / 0.1 + 0.5).clamp(0, 1)


def make_case(size: int, batch: int, device: torch.device | str = "cpu", seed: int = 0,
              settings: SoftInpaintingSettings | None = None, channels: int = LATENT_CHANNELS) -> Case:
    """Seeded inputs for a ``size``² latent (``8·size``² picture), ``batch`` images, ``channels``
    latent channels (4: SD, SDXL; 16: SD3, Flux)."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    nmask = _soft_disc(size).expand(channels, size, size).contiguous()
    orig = torch.randn(1, channels, size, size, generator=gen).expand(batch, -1, -1, -1).contiguous()
    change = torch.randn(batch, channels, size, size, generator=gen)
    processed = orig + change * (0.05 + nmask[None])
    pixels = torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
    picture = Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB").resize(
        (size * LATENT_SCALE, size * LATENT_SCALE), Image.Resampling.BILINEAR)
    return Case(
        size=size, batch=batch, device=device,
        settings=settings or SoftInpaintingSettings(),
        nmask=nmask.to(device), mask=(1 - nmask).to(device),
        latent_orig=orig.to(device), latent_processed=processed.to(device),
        sigma=torch.full((batch,), 2.5).to(device),
        init_image=picture,
    )
