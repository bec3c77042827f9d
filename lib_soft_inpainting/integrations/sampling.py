"""A k-diffusion style Euler sampler that calls the mask blend in the WebUI's hook order.

For k-diffusion samplers the WebUI blends *after* the model (SPEC §5): at each step the model's
denoised prediction ``D(x, σ)`` goes through the mask blend, and the sampler steps with the
blended prediction; after the last step the final blend runs once more. This module does the
same with any denoiser ``D`` (a callable ``(x, sigma) -> denoised``), so the stage-1 code path is
the one the WebUI takes, without the WebUI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

__all__ = ["MaskBlend", "img2img_sigmas", "karras_sigmas", "sample_euler"]

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
Progress = Callable[[int, int], None]


class MaskBlend(Protocol):
    """The two blends of an inpainting job: every step, and once after sampling."""

    def __call__(self, current: torch.Tensor, sigma: float) -> torch.Tensor: ...

    def final(self, samples: torch.Tensor) -> torch.Tensor: ...


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """The Karras et al. (2022) schedule: ``n`` noise levels from ``sigma_max`` down to ``sigma_min``,
    then 0, evenly spaced in ``σ^(1/ρ)`` (float64, ``[n + 1]``)."""
    if n < 1:
        raise ValueError(f"need at least one step, got {n}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def img2img_sigmas(steps: int, strength: float, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """The tail of a ``steps``-long Karras schedule that img2img runs at denoising ``strength``.

    As the WebUI does by default: ``int(min(strength, 0.999) · steps) + 1`` steps, starting at the
    matching noise level (the original latent plus noise of that level).
    """
    if not 0 < strength <= 1:
        raise ValueError(f"denoising strength must be in (0, 1], got {strength}")
    sigmas = karras_sigmas(steps, sigma_min, sigma_max)
    t_enc = int(min(strength, 0.999) * steps)
    return sigmas[steps - t_enc - 1:]


@torch.no_grad()
def sample_euler(denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, blend: MaskBlend | None = None,
                 progress: Progress | None = None) -> torch.Tensor:
    """Euler steps from ``x`` (noised to ``sigmas[0]``) down ``sigmas``; the blend sees each prediction.

    ``x ← x + (x − blend(D(x, σᵢ), σᵢ)) / σᵢ · (σᵢ₊₁ − σᵢ)``; the result goes through
    ``blend.final`` (the host's blend after sampling).
    """
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, sigma)
        if blend is not None:
            denoised = blend(denoised, sigma)
        x = x + (x - denoised) / sigma * (sigma_next - sigma)
        if progress is not None:
            progress(i + 1, total)
    return blend.final(x) if blend is not None else x
