"""Flow-matching schedulers and Flux's packed latents, for the diffusers adapter (SPEC §14).

- **Which schedulers are flow matching** is read from the scheduler's forward process, never from
  its name: a flow scheduler's ``scale_noise(sample, timestep, noise)`` makes its model input. It is
  run once at σ = ½ on a fresh copy of the scheduler (the caller's own schedule is not touched) and
  the coefficients go through the core's
  :func:`~lib_soft_inpainting.noise_level.noise_level_from_noise_scaling`:
  ``½·x₀ + ½·ε`` is flow matching, whose equivalent noise level is ``σ / (1 − σ)``.
- **The step.** ``FlowMatchEulerDiscreteScheduler.step`` does ``prev = sample + (σ_next − σ)·v``
  with the model's velocity ``v``; so ``x̂₀ = sample − σ·v``. :func:`flow_blended_output` blends that
  prediction at the equivalent noise level and hands the scheduler the velocity
  ``(sample − x̂₀′)/σ`` whose prediction is the blended ``x̂₀′``: the scheduler's own step does the rest.
- **Packed latents.** Flux pipelines keep latents as ``[B, (h/2)·(w/2), C·4]`` tokens of 2×2 latent
  pixels. The blend's channel norm is over the ``C`` channels of one latent pixel, so the
  prediction is unpacked to ``[B, C, h, w]``, blended, and packed again: exactly the unpacked blend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..noise_level import (
    NoiseLevel,
    UnsupportedModelError,
    noise_level_from_coefficients,
    noise_level_from_noise_scaling,
)

__all__ = [
    "flow_blended_output",
    "pack_latents",
    "scheduler_noise_level",
    "unpack_latents",
]

Blend = Callable[[torch.Tensor, Any], torch.Tensor]


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, h, w]`` → ``[B, (h/2)·(w/2), C·4]``, Flux's tokens of 2×2 latent pixels.

    Token ``(i, j)`` holds the pixels ``(2i + dy, 2j + dx)``; its feature ``c·4 + dy·2 + dx``.
    """
    batch, channels, height, width = latents.shape
    if height % 2 or width % 2:
        raise ValueError(f"packed latents need an even latent size, got {height}x{width}")
    patches = latents.reshape(batch, channels, height // 2, 2, width // 2, 2)
    return patches.permute(0, 2, 4, 1, 3, 5).reshape(batch, (height // 2) * (width // 2), channels * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`pack_latents` for a latent of ``height × width`` pixels."""
    batch, count, features = tokens.shape
    if count != (height // 2) * (width // 2) or features % 4:
        raise ValueError(f"packed latents of shape {tuple(tokens.shape)} do not hold a "
                         f"{height}x{width} latent")
    patches = tokens.reshape(batch, height // 2, width // 2, features // 4, 2, 2)
    return patches.permute(0, 3, 1, 4, 2, 5).reshape(batch, features // 4, height, width)


def _probe_scale_noise(scheduler: Any) -> Callable[..., torch.Tensor]:
    """``noise_scaling(sigma, noise, latent)`` by a fresh copy of the scheduler's ``scale_noise``."""
    def noise_scaling(sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        probe = type(scheduler).from_config(scheduler.config)
        sigma = sigma.reshape(-1)[:1].float().cpu()
        probe.sigmas = torch.cat([sigma, sigma.new_zeros(1)])
        probe.timesteps = sigma * float(getattr(scheduler.config, "num_train_timesteps", 1000))
        return probe.scale_noise(latent.float(), probe.timesteps[:1], noise.float())

    return noise_scaling


def scheduler_noise_level(scheduler: Any) -> NoiseLevel:
    """How a diffusers scheduler's σ becomes the schedule's noise level (``.is_flow``: σ/(1 − σ)).

    A scheduler with a flow-style forward process (``scale_noise``) is probed at σ = ½. One without
    belongs to the DDPM family (``add_noise``: ``√ᾱ·x₀ + √(1 − ᾱ)·ε``), whose samples the adapter
    reads in k-diffusion terms, ``x₀ + σ·ε`` (coefficients 1 and ½ at σ = ½): σ is a noise level.
    A ``scale_noise`` that is not flow matching raises
    :class:`~lib_soft_inpainting.noise_level.UnsupportedModelError` naming the scheduler.
    """
    name = type(scheduler).__name__
    if not callable(getattr(scheduler, "scale_noise", None)):
        return noise_level_from_coefficients(1.0, 0.5, name)
    level = noise_level_from_noise_scaling(_probe_scale_noise(scheduler), name)
    if not level.is_flow:
        raise UnsupportedModelError(f"soft inpainting does not support {name}: its scale_noise adds noise "
                                    "to the sample without scaling the sample, which no diffusers "
                                    "pipeline it supports does")
    return level


def flow_blended_output(model_output: torch.Tensor, sample: torch.Tensor, sigma: float, level: NoiseLevel,
                        blend: Blend, latent_size: tuple[int, int] | None = None) -> torch.Tensor:
    """The velocity whose prediction ``sample − σ·v`` is the blended one (same dtype as the model's).

    ``sigma`` is the scheduler's flow σ of the step; the blend gets ``level(sigma)``. A 3-D
    (packed) sample needs ``latent_size = (h, w)`` of the unpacked latent.
    """
    if sigma <= 0:  # no noise left, nothing to blend towards (flow schedules end at 0, never step from it)
        return model_output
    velocity, x = model_output.float(), sample.float()
    x0 = x - sigma * velocity
    packed = x0.dim() == 3
    if packed:
        if latent_size is None:
            raise ValueError("packed latents need the latent size to be unpacked for the blend")
        x0 = pack_latents(blend(unpack_latents(x0, *latent_size), level(sigma)))
    else:
        x0 = blend(x0, level(sigma))
    return ((x - x0) / sigma).to(model_output.dtype)
