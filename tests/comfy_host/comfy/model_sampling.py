"""``comfy.model_sampling``: how the sampler's first input is made from noise and the latent."""

from __future__ import annotations

import torch


def _shaped(sigma: torch.Tensor, ndim: int) -> torch.Tensor:
    return sigma.view(()) if sigma.nelement() == 1 else sigma.view(sigma.shape[:1] + (1,) * (ndim - 1))


class EPS:
    sigma_min, sigma_max = 0.0292, 14.6146

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = _shaped(sigma, noise.ndim)
        noise = noise * torch.sqrt(1.0 + sigma**2.0) if max_denoise else noise * sigma
        noise += latent_image
        return noise

    def inverse_noise_scaling(self, sigma, latent):
        return latent

    def timestep(self, sigma):
        return sigma * 1000 / self.sigma_max


class CONST:
    """Flow matching (SD3, Flux): ``x = σ·noise + (1 − σ)·x₀``, sigma in 0–1."""

    sigma_min, sigma_max = 0.0, 1.0

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = _shaped(sigma, noise.ndim)
        return sigma * noise + (1.0 - sigma) * latent_image

    def inverse_noise_scaling(self, sigma, latent):
        return latent / (1.0 - _shaped(sigma, latent.ndim))

    def timestep(self, sigma):
        return sigma * 1000


class ModelSamplingDiscrete(EPS):
    pass


class ModelSamplingFlux(CONST):
    pass
