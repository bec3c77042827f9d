"""``modules.sd_samplers_cfg_denoiser`` (WebUI v1.10.1): the denoiser wrapper that blends the mask.

``forward`` keeps the host's shape, which the extension reads at start-up to pick its per-step path:
a nested ``apply_blend`` that calls ``on_mask_blend``, used on the noisy input only when
``mask_before_denoising`` and otherwise on the model's prediction; ``on_cfg_denoiser`` before the
model and ``on_cfg_after_cfg`` after the blend. The sampler copies ``p.mask``/``p.nmask`` when it
starts (``Sampler.initialize``), after ``process_before_every_sampling``.
"""

from __future__ import annotations

from typing import Any

import torch

from . import scripts
from .script_callbacks import (
    AfterCFGCallbackParams,
    CFGDenoiserParams,
    cfg_after_cfg_callback,
    cfg_denoiser_callback,
)


class CFGDenoiser:
    def __init__(self, p: Any, model: Any) -> None:
        self.p = p
        self.model = model
        self.init_latent = p.init_latent
        self.mask = p.mask if hasattr(p, "mask") else None  # a txt2img job has none
        self.nmask = p.nmask if hasattr(p, "nmask") else None
        self.mask_before_denoising = False
        self.classic_ddim_eps_estimation = False
        self.step = 0
        self.seen_inputs: list[tuple[torch.Tensor, torch.Tensor]] = []  # what the model was fed

    def inner_model(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.seen_inputs.append((x.clone(), sigma.clone()))
        return self.model.denoise(x, sigma, self.p.image_conditioning)

    def before_model(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        params = CFGDenoiserParams(x, None, sigma, self.step, self.p.steps, None, None, self)
        cfg_denoiser_callback(params)
        return params.x

    def after_cfg(self, denoised: torch.Tensor) -> torch.Tensor:
        params = AfterCFGCallbackParams(denoised, self.step, self.p.steps)
        cfg_after_cfg_callback(params)
        self.step += 1
        return params.x

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        def apply_blend(current_latent):
            blended_latent = current_latent * self.nmask + self.init_latent * self.mask
            if self.p.scripts is not None:
                mba = scripts.MaskBlendArgs(current_latent, self.nmask, self.init_latent, self.mask,
                                            blended_latent, denoiser=self, sigma=sigma)
                self.p.scripts.on_mask_blend(self.p, mba)
                blended_latent = mba.blended_latent
            return blended_latent

        if self.mask_before_denoising and self.mask is not None:
            x = apply_blend(x)
        x = self.before_model(x, sigma)
        denoised = self.inner_model(x, sigma)
        if not self.mask_before_denoising and self.mask is not None:
            denoised = apply_blend(denoised)
        return self.after_cfg(denoised)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.forward(x, sigma)
