"""The two sampler families, with the host's mask blending (``sd_samplers_cfg_denoiser.CFGDenoiser``).

- k-diffusion samplers ("Euler"): the model's denoised prediction is blended after the model runs,
  with ``sigma`` the step's noise level; the sampler then steps from the blended prediction.
- timestep samplers ("DDIM"): the noisy input is blended *before* the model runs, ``sigma`` is the
  timestep (0–999), and the denoiser carries ``alphas`` and ``mask_before_denoising = True``.
After sampling, ``StableDiffusionProcessingImg2Img.sample`` runs the final blend (no denoiser).
"""

from __future__ import annotations

from typing import Any

import torch

from . import scripts, sd_samplers_cfg_denoiser


class CFGDenoiserTimesteps(sd_samplers_cfg_denoiser.CFGDenoiser):
    """The timestep family's denoiser; its sampler below blends the noisy input itself."""

    def __init__(self, p: Any, model: Any) -> None:
        super().__init__(p, model)
        self.alphas = model.alphas_cumprod
        self.mask_before_denoising = True

    def apply_blend(self, current_latent: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        blended = current_latent * self.nmask + self.init_latent * self.mask
        if self.p.scripts is not None:
            mba = scripts.MaskBlendArgs(current_latent, self.nmask, self.init_latent, self.mask, blended,
                                        denoiser=self, sigma=sigma)
            self.p.scripts.on_mask_blend(self.p, mba)
            blended = mba.blended_latent
        return blended


def karras_sigmas(steps: int, sigma_min: float = 0.0292, sigma_max: float = 14.6146, rho: float = 7.0
                  ) -> torch.Tensor:
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).to(torch.float32)


class KDiffusionSampler:
    """Euler with a Karras schedule (a model with its own ``get_sigmas``, such as A1111's SD3
    denoiser, uses that); img2img starts ``denoising_strength`` of the way in, with the model's
    ``add_noise_to_latent`` where it has one (A1111 1.10 SD3), else ``x + σ·noise``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def sample_img2img(self, p: Any, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)
        get_sigmas = getattr(self.model, "get_sigmas", None)
        sigmas = (get_sigmas(steps) if get_sigmas is not None else karras_sigmas(steps))[steps - t_enc - 1:]
        denoiser = sd_samplers_cfg_denoiser.CFGDenoiser(p, self.model)  # the host's class, looked up now
        self.denoiser = denoiser
        add_noise = getattr(self.model, "add_noise_to_latent", None)
        xi = add_noise(x, noise, sigmas[0]) if add_noise is not None else x + noise * sigmas[0]
        s_in = xi.new_ones([xi.shape[0]])
        for i in range(len(sigmas) - 1):
            denoised = denoiser(xi, sigmas[i] * s_in)
            d = (xi - denoised) / sigmas[i]
            xi = xi + d * (sigmas[i + 1] - sigmas[i])
        return xi

    def sample(self, p: Any, noise: torch.Tensor) -> torch.Tensor:
        """txt2img: the whole schedule from pure noise (a txt2img job has no mask to blend)."""
        sigmas = karras_sigmas(p.steps)
        denoiser = sd_samplers_cfg_denoiser.CFGDenoiser(p, self.model)
        self.denoiser = denoiser
        xi = noise * sigmas[0]
        s_in = xi.new_ones([xi.shape[0]])
        for i in range(len(sigmas) - 1):
            d = (xi - denoiser(xi, sigmas[i] * s_in)) / sigmas[i]
            xi = xi + d * (sigmas[i + 1] - sigmas[i])
        return xi


class TimestepSampler:
    """Deterministic DDIM (eta 0) over the host's timestep grid."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def sample_img2img(self, p: Any, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)
        timesteps = torch.clip(torch.arange(0, 1000, 1000 // steps) + 1, 0, 999)
        alphas = self.model.alphas_cumprod
        a_enc = alphas[timesteps[t_enc]]
        xi = x * a_enc.sqrt() + noise * (1 - a_enc).sqrt()
        denoiser = CFGDenoiserTimesteps(p, self.model)
        self.denoiser = denoiser
        s_in = xi.new_ones([xi.shape[0]])
        schedule = timesteps[:t_enc]
        for i in range(len(schedule) - 1, -1, -1):
            ts = schedule[i]
            a_t = alphas[ts]
            a_prev = alphas[schedule[i - 1]] if i > 0 else alphas[0]
            # Blend before the model, on the noisy latent, with the timestep as ``sigma``.
            x_in = denoiser.apply_blend(xi, ts * s_in) if denoiser.mask is not None else xi
            # The model's prediction of x₀ at the step's noise level (inputs scaled by 1/sqrt(ᾱ)).
            sigma = ((1 - a_t) / a_t).sqrt()
            pred_x0 = self.model.denoise(x_in / a_t.sqrt(), sigma * s_in, p.image_conditioning)
            eps = (x_in - a_t.sqrt() * pred_x0) / (1 - a_t).sqrt()
            xi = a_prev.sqrt() * pred_x0 + (1 - a_prev).sqrt() * eps
            denoiser.step += 1
        return xi


SAMPLERS = {"Euler": KDiffusionSampler, "DDIM": TimestepSampler}


def create_sampler(name: str, model: Any) -> Any:
    return SAMPLERS[name](model)


__all__ = ["CFGDenoiserTimesteps", "create_sampler", "karras_sigmas"]
