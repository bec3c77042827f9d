"""The adaptive pixel composite for ComfyUI's tensors (SPEC §6), through the core's picture code.

ComfyUI conventions: IMAGE ``[B, H, W, 3]`` floats in 0–1, MASK ``[B, H, W]`` (1 = regenerate),
LATENT ``{"samples": [B, C, h, w], "noise_mask": [B, 1, H, W]}`` with *unscaled* VAE latents. The
WebUI measures the latent change in the model's scaled latent space, so both latents go through
the model's ``latent_format.process_in`` first. The mask is resized to the latent's size the way
ComfyUI's sampler resizes noise masks (``comfy.utils.reshape_mask``, bilinear), so the composite
sees the mask the sampler used.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lib_soft_inpainting import SoftInpaintingSettings, pictures

LOG = logging.getLogger("soft_inpainting")


def to_pictures(images: torch.Tensor) -> list[Image.Image]:
    """IMAGE → RGB pictures, truncating ``255·x`` as ComfyUI's SaveImage (and the WebUI) do."""
    arrays = (255.0 * images[..., :3].detach().float().cpu()).clamp(0, 255).numpy().astype(np.uint8)
    return [Image.fromarray(a, "RGB") for a in arrays]


def from_pictures(pictures_: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(p.convert("RGB")) for p in pictures_])).float() / 255.0


def _reshape_mask(mask: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``mask`` at ``shape`` ([B, C, h, w]) as the host's sampler resizes noise masks."""
    try:
        from comfy.utils import reshape_mask
    except ImportError:  # outside ComfyUI: the same operation
        def reshape_mask(m: torch.Tensor, out: tuple[int, ...]) -> torch.Tensor:
            m = F.interpolate(m.reshape(-1, 1, m.shape[-2], m.shape[-1]), size=out[2:], mode="bilinear")
            m = m.repeat(1, out[1], 1, 1)[:, :out[1]]
            reps = -(-out[0] // m.shape[0])
            return m.repeat(reps, 1, 1, 1)[:out[0]]
    return reshape_mask(mask.float(), shape)


def _fit_original(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The original at the decoded size: cropped as ComfyUI's VAE crops its input to whole latent
    pixels (centred, ``(dim % ratio) // 2``), else stretched (Lanczos)."""
    if picture.size == size:
        return picture
    (w, h), (dw, dh) = picture.size, size
    if w >= dw and h >= dh:
        left, top = (w - dw) // 2, (h - dh) // 2
        if w - dw < 32 and h - dh < 32:  # a VAE crop removes less than one latent pixel (8–16 px)
            return picture.crop((left, top, left + dw, top + dh))
    return picture.resize(size, Image.Resampling.LANCZOS)


def scaled_latent(model: Any, samples: torch.Tensor) -> torch.Tensor:
    """``samples`` in the model's scaled latent space (``latent_format.process_in``)."""
    if model is None:
        return samples
    latent_format = model.get_model_object("latent_format") if hasattr(model, "get_model_object") \
        else model.model.latent_format
    return latent_format.process_in(samples.float())


def composite(settings: SoftInpaintingSettings, model: Any, original_image: torch.Tensor,
              decoded_image: torch.Tensor, original_latent: dict[str, Any], sampled_latent: dict[str, Any],
              mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(IMAGE, MASK): the decoded images with the original pixels kept where nothing changed."""
    sampled = sampled_latent["samples"]
    batch, height, width = decoded_image.shape[0], decoded_image.shape[1], decoded_image.shape[2]
    if mask is None:
        mask = sampled_latent.get("noise_mask", original_latent.get("noise_mask"))
    if mask is None:
        LOG.warning("soft inpainting composite: no MASK and no noise_mask on the latent, so the whole "
                    "picture was regenerated; the decoded image is passed through")
        return decoded_image, torch.ones(batch, height, width)
    if sampled.shape[0] != batch:
        raise ValueError(f"soft inpainting composite: {sampled.shape[0]} sampled latents but "
                         f"{batch} decoded images")
    nmask = _reshape_mask(mask.to(sampled.device), (batch, 1, *sampled.shape[-2:]))
    orig = scaled_latent(model, original_latent["samples"].to(sampled.device))
    new = scaled_latent(model, sampled)
    overlays = [_fit_original(p, (width, height)).convert("RGBA") for p in to_pictures(original_image)]
    result = pictures.adaptive_composite(settings, nmask, orig, new, overlays, width, height, None)
    images = []
    for decoded, overlay in zip(to_pictures(decoded_image), result.overlays, strict=True):
        picture = decoded.convert("RGBA")
        picture.alpha_composite(overlay)  # the WebUI's apply_overlay
        images.append(picture.convert("RGB"))
    masks = torch.from_numpy(np.stack([np.asarray(m.convert("L")) for m in result.masks])).float() / 255.0
    return from_pictures(images), masks
