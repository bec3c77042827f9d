"""Host-independent soft inpainting: latent mask, stage-1 blends, stage 2 on decoded pictures.

A front-end without the WebUI does what the WebUI does around the core (SPEC §4–§6):

1. turn the mask picture into a latent-size ``nmask`` *without rounding* (the WebUI's
   ``mask_round = False``): :func:`latent_nmask`;
2. at every sampler step, blend the model's denoised prediction with the original latent:
   :class:`SoftBlend` (and after sampling, no hard paste: :meth:`SoftBlend.final`);
3. after decoding, composite the original over the result through masks made from how much each
   region changed: :func:`soft_composite`.

:class:`HardBlend` and :func:`hard_composite` are the host's ordinary inpainting, for comparison.
Mask polarity everywhere: white / 1 = regenerate, black / 0 = keep the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

from .. import pictures
from ..blend import get_modified_nmask, latent_blend
from ..settings import SoftInpaintingSettings

__all__ = [
    "Composite",
    "HardBlend",
    "SoftBlend",
    "apply_overlay",
    "hard_composite",
    "latent_nmask",
    "mask_from_picture",
    "soft_composite",
]

BACKGROUND = "#ffffff"


def mask_from_picture(mask: Image.Image) -> Image.Image:
    """A mask picture as grey levels: the alpha channel of a transparent RGBA picture, else luminance.

    The host reads masks this way with ``mask_round = False`` (grey levels kept).
    """
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A")
    return mask.convert("L")


def latent_nmask(mask: Image.Image, latent_width: int, latent_height: int, channels: int,
                 round_mask: bool = False) -> torch.Tensor:
    """``nmask [C, h, w]`` in [0, 1] from a grey mask picture, shrunk as the host shrinks it (bicubic).

    ``round_mask=True`` gives the host's ordinary (binary) inpainting mask.
    """
    small = mask_from_picture(mask).resize((latent_width, latent_height), resample=Image.Resampling.BICUBIC)
    values = np.asarray(small, dtype=np.float32) / 255.0
    if round_mask:
        values = np.around(values)
    return torch.from_numpy(values)[None].repeat(channels, 1, 1)


def _first_sigma(sigma: torch.Tensor | float) -> torch.Tensor | float:
    """The step's noise level; a per-sample tensor holds one value repeated (SPEC §5)."""
    if isinstance(sigma, torch.Tensor) and sigma.dim() > 0:
        return sigma.reshape(-1)[0]
    return sigma


@dataclass
class SoftBlend:
    """Stage 1 (SPEC §5): called with each step's denoised prediction and that step's sigma."""

    settings: SoftInpaintingSettings
    init_latent: torch.Tensor
    nmask: torch.Tensor

    def __call__(self, current: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        t = get_modified_nmask(self.settings, self.nmask.to(current), _first_sigma(sigma))
        init = self.init_latent.to(current).expand_as(current)
        return latent_blend(self.settings, init, current, t)

    def final(self, samples: torch.Tensor) -> torch.Tensor:
        """The blend after sampling: none, the per-step blends already did the work."""
        return samples


@dataclass
class HardBlend:
    """The host's ordinary inpainting blend: ``current · nmask + init · (1 − nmask)``."""

    init_latent: torch.Tensor
    nmask: torch.Tensor

    def __call__(self, current: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        nmask = self.nmask.to(current)
        return current * nmask + self.init_latent.to(current) * (1 - nmask)

    def final(self, samples: torch.Tensor) -> torch.Tensor:
        return self(samples)


def apply_overlay(image: Image.Image, overlay: Image.Image) -> Image.Image:
    """Paste an RGBA overlay over a decoded picture, as the host's ``apply_overlay`` does."""
    base = image.convert("RGBA")
    if base.size != overlay.size:
        raise ValueError(f"soft inpainting: decoded picture {base.size} and overlay {overlay.size} differ")
    base.alpha_composite(overlay)
    return base.convert("RGB")


@dataclass
class Composite:
    """The final pictures and, per picture, the compositing mask used (white = generated shown)."""

    images: list[Image.Image]
    masks: list[Image.Image]


def soft_composite(settings: SoftInpaintingSettings, nmask: torch.Tensor, init_latent: torch.Tensor,
                   samples: torch.Tensor, decoded: Sequence[Image.Image], original: Image.Image,
                   background: str = BACKGROUND) -> Composite:
    """Stage 2 (SPEC §6): keep the original where the sampled latents did not change.

    ``decoded[i]`` is ``samples[i]`` decoded; ``original`` is the init picture at the decoded size
    (its transparency flattened onto ``background``).
    """
    width, height = decoded[0].size
    overlay_images = pictures.rebuild_overlay_images([original], background, None, 0, width, height)
    made = pictures.adaptive_composite(settings, nmask, init_latent, samples, overlay_images, width, height,
                                       None)
    images = [apply_overlay(img, made.overlays[i]) for i, img in enumerate(decoded)]
    return Composite(images=images, masks=made.masks[:len(images)])


def hard_composite(decoded: Sequence[Image.Image], original: Image.Image, mask: Image.Image,
                   background: str = BACKGROUND) -> Composite:
    """The host's ordinary inpainting overlay ("whole picture" mode): alpha = 255 − clip(2·mask)."""
    width, height = decoded[0].size
    grey = mask_from_picture(mask)
    if grey.size != (width, height):
        grey = pictures.resize_image(0, grey, width, height)
    doubled = Image.fromarray(np.clip(np.asarray(grey, dtype=np.float32) * 2, 0, 255).astype(np.uint8))
    base = pictures.rebuild_overlay_images([original], background, None, 0, width, height)[0]
    overlay = pictures.overlay_with_mask(base, doubled)
    images = [apply_overlay(img, overlay) for img in decoded]
    return Composite(images=images, masks=[ImageOps.grayscale(doubled)] * len(images))
