"""Forge Classic before its 2025-04 change (Haoming02/sd-webui-forge-classic, commit 1f95d717,
2025-02-21): the same input-side hard blend as Forge ``main``, then a hard blend of the prediction
with **no** ``on_mask_blend`` call per step; only the final blend after sampling calls the hook.
``on_cfg_denoiser`` and ``on_cfg_after_cfg`` are called every step.
"""

from __future__ import annotations

import torch
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
            denoised = denoised * self.nmask + self.init_latent * self.mask
        return self.after_cfg(denoised)
