"""Forge Neo (the ``neo`` branch of Haoming02's Forge, as its public fork
exo101/sd-webui-forge-neo-v3 holds it in ``webui/``, commit 5692d2d1, 2026-08): Forge ``main``'s
per-step blending (``variants/forge_main.py``) with these differences, each read from its
``modules/sd_samplers_cfg_denoiser.py`` and ``modules/processing.py``:

- ``forward(self, x, sigma, …, **kwargs)`` takes the sampler's ``model_options`` as keywords;
- the input-side blend reshapes sigma for the latents' rank (``[B, 1, 1, 1, 1]`` for the 5-D
  latents of its video models) before ``predictor.noise_scaling(sigma, noise, init_latent)``;
- ``processing`` gives ``p.mask``/``p.nmask`` a leading batch axis (``[1, C, H, W]``) whenever their
  rank differs from the latents' — always, for pictures — where A1111 and Forge ``main`` keep
  ``[C, H, W]`` (``LATENT_MASK_BATCH_AXIS``, applied by the harness);
- ``InputAccordion`` is a function, as in Forge ``main``.
"""

from __future__ import annotations

import torch
from modules import scripts

from .forge_main import CFGDenoiser as ForgeMainDenoiser
from .forge_main import InputAccordion  # noqa: F401  (the same function as Forge main's)

LATENT_MASK_BATCH_AXIS = True


class CFGDenoiser(ForgeMainDenoiser):
    def forward(self, x, sigma, **kwargs):
        if self.mask is not None:
            predictor = self.model.forge_objects.unet.model.predictor
            if self.init_latent.ndim == 5:
                _sigma = sigma[:, None, None, None, None]
            else:
                _sigma = sigma[:, None, None, None]
            noisy_initial_latent = predictor.noise_scaling(_sigma, torch.randn_like(self.init_latent),
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
