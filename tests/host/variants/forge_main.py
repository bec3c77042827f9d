"""Forge ``main`` (lllyasviel/stable-diffusion-webui-forge, commit dfdcbab6, 2025): the denoiser
hard-blends the noisy input with freshly noised original latents *before* the model, always,
outside any hook (``x = x * nmask + noisy_initial_latent * mask``, the noised latents made by the
model's own ``forge_objects.unet.model.predictor.noise_scaling``: ``init + σ·noise`` for SD models,
``(1 − σ)·init + σ·noise`` for flow models), then calls ``on_mask_blend`` after the model. Timestep
samplers set ``classic_ddim_eps_estimation`` and turn the timestep into a sigma first;
``mask_before_denoising`` is never set. (The real denoiser reaches the model as
``self.inner_model.inner_model``; here it is ``self.model``.) Neo's differences: ``variants/neo.py``.
"""

from __future__ import annotations

import torch
from modules import scripts
from modules.sd_samplers_cfg_denoiser import CFGDenoiser as A1111Denoiser


class CFGDenoiser(A1111Denoiser):
    def forward(self, x, sigma):
        if self.mask is not None:
            predictor = self.model.forge_objects.unet.model.predictor
            fresh_noise = torch.randn_like(self.init_latent)
            noisy_initial_latent = predictor.noise_scaling(sigma[:, None, None, None], fresh_noise,
                                                           self.init_latent, max_denoise=False)
            x = x * self.nmask + noisy_initial_latent * self.mask

        x = self.before_model(x, sigma)
        denoised = self.inner_model(x, sigma)

        if self.mask is not None:
            blended_latent = denoised * self.nmask + self.init_latent * self.mask
            if self.p.scripts is not None:
                mba = scripts.MaskBlendArgs(denoised, self.nmask, self.init_latent, self.mask, blended_latent,
                                            denoiser=self, sigma=sigma)
                self.p.scripts.on_mask_blend(self.p, mba)
                blended_latent = mba.blended_latent
            denoised = blended_latent
        return self.after_cfg(denoised)


def InputAccordion(value=None, **kwargs):
    """Forge ``main``'s ``modules.ui_components.InputAccordion`` is a function returning the
    accordion (``InputAccordionImpl``, a checkbox subclass)."""
    from modules.ui_components import InputAccordionImpl

    return InputAccordionImpl(value, **kwargs)
