"""Forge ``main`` (lllyasviel/stable-diffusion-webui-forge, commit dfdcbab6, 2025) and Neo: the
denoiser hard-blends the noisy input with freshly noised original latents *before* the model,
always, outside any hook (``x = x * nmask + noisy_initial_latent * mask``), then calls
``on_mask_blend`` after the model. Timestep samplers set ``classic_ddim_eps_estimation`` and turn
the timestep into a sigma first; ``mask_before_denoising`` is never set.
"""

from __future__ import annotations

import torch
from modules import scripts
from modules.sd_samplers_cfg_denoiser import CFGDenoiser as A1111Denoiser


class CFGDenoiser(A1111Denoiser):
    def forward(self, x, sigma):
        if self.mask is not None:
            fresh_noise = torch.randn_like(self.init_latent)
            noisy_initial_latent = self.init_latent + sigma[:, None, None, None] * fresh_noise
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
