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
    "blur_mask",
    "hard_composite",
    "is_hard_edged",
    "latent_nmask",
    "mask_from_picture",
    "soft_composite",
]

BACKGROUND = "#ffffff"
# OpenCV blurs 8-bit pictures with kernel weights in fixed point, 8 fractional bits.
_FIXED_ONE = 256


def mask_from_picture(mask: Image.Image) -> Image.Image:
    """A mask picture as grey levels: the alpha channel of a transparent RGBA picture, else luminance.

    The host reads masks this way with ``mask_round = False`` (grey levels kept).
    """
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A")
    return mask.convert("L")


def _blur_kernel(sigma: int) -> torch.Tensor:
    """The WebUI's mask blur kernel: ``2·int(2.5σ + 0.5) + 1`` taps of a Gaussian of deviation σ,
    quantised as OpenCV quantises it for 8-bit pictures (``getGaussianKernelBitExact``, then fixed
    point with the rounding error carried from tap to tap, the centre taking what is left so the
    weights sum to exactly 256)."""
    taps = 2 * int(2.5 * sigma + 0.5) + 1
    x = np.arange(taps, dtype=np.float64) - (taps - 1) / 2
    weights = np.exp(-x * x / (2.0 * sigma * sigma))
    weights /= weights.sum()
    fixed = np.zeros(taps, dtype=np.int64)
    carried = 0.0
    for i in range(taps // 2):  # a loop over the few taps, as OpenCV's error diffusion runs
        exact = weights[i] * _FIXED_ONE + carried
        fixed[i] = fixed[taps - 1 - i] = int(np.floor(exact + 0.5))
        carried = exact - fixed[i]
    fixed[taps // 2] = _FIXED_ONE - 2 * int(fixed[: taps // 2].sum())
    return torch.from_numpy(fixed.astype(np.float32))


def _blur_rows(values: torch.Tensor, sigma: int) -> torch.Tensor:
    """One pass of OpenCV's 8-bit Gaussian blur along the last axis of ``uint8``-valued ``[H, W]``.

    Borders reflect without repeating the edge pixel (OpenCV's default, ``BORDER_REFLECT_101``),
    as often as a kernel wider than the picture needs. Every product and sum is an integer below
    2²⁴, so float32 holds them exactly and the result is rounded as OpenCV rounds.
    """
    width = values.shape[-1]
    kernel = _blur_kernel(sigma)
    if width == 1:
        return values
    radius = kernel.numel() // 2
    index = torch.from_numpy(np.pad(np.arange(width), radius, mode="reflect"))
    padded = values[:, index][:, None]
    summed = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1))[:, 0]
    return torch.floor((summed + _FIXED_ONE / 2) / _FIXED_ONE).clamp(0, 255)


def blur_mask(mask: Image.Image, blur_x: int, blur_y: int | None = None) -> Image.Image:
    """The mask blurred as the WebUI's img2img blurs it (``mask_blur_x``/``mask_blur_y``).

    The WebUI runs ``cv2.GaussianBlur`` twice on the grey mask: a horizontal kernel of σ = blur_x,
    then a vertical one of σ = blur_y, each of ``2·int(2.5σ + 0.5) + 1`` taps, with 8-bit results
    in between; a blur of 0 skips its pass. This reproduces it (the same pixel values) without
    OpenCV.
    """
    blur_y = blur_x if blur_y is None else blur_y
    grey = mask_from_picture(mask)
    if blur_x <= 0 and blur_y <= 0:
        return grey
    values = torch.from_numpy(np.asarray(grey, dtype=np.float32).copy())
    if blur_x > 0:
        values = _blur_rows(values, blur_x)
    if blur_y > 0:
        values = _blur_rows(values.T, blur_y).T
    return Image.fromarray(values.numpy().astype(np.uint8), mode="L")


def is_hard_edged(mask: Image.Image, grey_share: float = 0.01) -> bool:
    """Whether a mask has (practically) no grey: under ``grey_share`` of its non-black pixels are
    neither black nor white, so soft inpainting has no transition to blend across."""
    values = np.asarray(mask_from_picture(mask))
    painted = int(np.count_nonzero(values))
    grey = int(np.count_nonzero((values > 0) & (values < 255)))
    return grey <= grey_share * painted


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
