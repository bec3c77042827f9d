"""A model in ComfyUI's shape (``BaseModel``), wrapping the WebUI stand-in's exact denoiser.

``apply_model(x, sigma, **cond)`` returns the denoised prediction; ``extra_conds`` records the mask
the 9-channel (inpainting) model's concat conditioning gets, as ``model_base.concat_cond`` reads it
(``concat_mask``, else the sampler's ``denoise_mask``; the host then rounds it).
"""

from __future__ import annotations

from typing import Any

import torch
from fake_model import FakeModel

from . import latent_formats, model_sampling


class FakeBaseModel:
    def __init__(
        self,
        *,
        scale_factor: float = 0.18215,
        flow: bool = False,
        inpainting: bool = False,
        denoise_fn: Any = None,
    ) -> None:
        self.latent_format = latent_formats.SD15(scale_factor)
        self.model_sampling = (
            model_sampling.ModelSamplingFlux() if flow else model_sampling.ModelSamplingDiscrete()
        )
        self.inpainting = inpainting
        self.fake = FakeModel(inpainting=inpainting)
        self.denoise_fn = denoise_fn or self.fake.denoise
        self.concat_masks: list[torch.Tensor] = []
        self.inputs: list[torch.Tensor] = []

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_in(latent)

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_out(latent)

    def scale_latent_inpaint(self, x, sigma, noise, latent_image):
        return self.model_sampling.noise_scaling(
            sigma.reshape([sigma.shape[0]] + [1] * (noise.dim() - 1)), noise, latent_image
        )

    def extra_conds(self, **kwargs: Any) -> dict[str, Any]:
        if self.inpainting:
            mask = kwargs.get("concat_mask", kwargs.get("denoise_mask"))
            if mask is not None:
                self.concat_masks.append(mask.clone())
        return {}

    def apply_model(
        self, x: torch.Tensor, sigma: torch.Tensor, cond_scale_offset: float = 0.0
    ) -> torch.Tensor:
        self.inputs.append(x.clone())
        return self.denoise_fn(x, sigma) + cond_scale_offset
