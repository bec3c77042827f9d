"""The noise level the schedule is made for, whatever the model family (SPEC §14).

``get_modified_nmask`` raises the mask to ``sigma ** schedule_bias · preservation_strength``: it
was made for the noise levels of SD models, whose sampler input is ``x₀ + σ·ε`` with σ from ~14.6
down. Flow-matching models (SD3/3.5, Flux, Chroma, Qwen-Image, …) feed their model
``(1 − σ)·x₀ + σ·ε`` with σ from 1 down to 0; divided by ``1 − σ`` that is ``x₀ + σ/(1 − σ)·ε``, so
their equivalent noise level is ``σ / (1 − σ)``. Fed the raw σ ≤ 1, the schedule can never hold
the original in grey regions.

Which kind a model is gets decided from the model's own parameterisation, never from its name:
the coefficients ``a, b`` of its sampler input ``a·x₀ + b·ε`` at σ = ½ (``1, ½`` for a noise level,
``½, ½`` for flow matching). Hosts expose them as ``noise_scaling(sigma, noise, latent)`` on their
model-sampling objects (ComfyUI, Forge's backend predictor, A1111's SD3 code); diffusers' flow
schedulers as ``scale_noise``. Every adapter asks this module, so SD3 in A1111, Flux in Neo, in
ComfyUI and in diffusers mean the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

__all__ = [
    "FLOW_SIGMA_CAP",
    "SIGMA_IS_NOISE_LEVEL",
    "NoiseLevel",
    "UnsupportedModelError",
    "flow_noise_level",
    "noise_level_from_coefficients",
    "noise_level_from_noise_scaling",
]

FLOW_SIGMA_CAP = 1e-4
"""``1 − σ`` is kept at or above this: σ = 1 (pure noise, where a short img2img schedule may start)
maps to about 10⁴, which the schedule treats as infinity, instead of dividing by zero."""

_TOLERANCE = 1e-6
Sigma = TypeVar("Sigma", torch.Tensor, float)


class UnsupportedModelError(ValueError):
    """A model whose sampler input is neither ``x₀ + σ·ε`` nor ``(1 − σ)·x₀ + σ·ε``."""


def flow_noise_level(sigma: Sigma) -> Sigma:
    """``σ / (1 − σ)``, with ``1 − σ`` capped below at :data:`FLOW_SIGMA_CAP` (tensor in, tensor out
    on the same device, no host synchronisation; float in, float out)."""
    if isinstance(sigma, torch.Tensor):
        return sigma / (1 - sigma).clamp_min(FLOW_SIGMA_CAP)
    return float(sigma) / max(1.0 - float(sigma), FLOW_SIGMA_CAP)


@dataclass(frozen=True)
class NoiseLevel:
    """How a model's sampler sigma becomes the noise level of ``get_modified_nmask``.

    ``is_flow``: the model is flow matching and its σ is mapped to ``σ / (1 − σ)``; otherwise the
    sampler's sigma is the noise level already and is passed through unchanged (the very object).
    """

    is_flow: bool
    model_name: str = ""

    def __call__(self, sigma: Sigma) -> Sigma:
        return flow_noise_level(sigma) if self.is_flow else sigma

    @property
    def description(self) -> str:
        name = self.model_name or "the model"
        if self.is_flow:
            return (f"{name} is a flow-matching model: the schedule uses the equivalent noise level "
                    f"sigma / (1 - sigma)")
        return f"{name}: sigma is the noise level"


SIGMA_IS_NOISE_LEVEL = NoiseLevel(is_flow=False)


def noise_level_from_coefficients(latent_coefficient: float, noise_coefficient: float,
                                  model_name: str = "") -> NoiseLevel:
    """The mapping for a model whose sampler input at σ = ½ is ``a·x₀ + b·ε``.

    ``a = 1, b = ½``: a noise level (SD1, SD2, SDXL, v-prediction, EDM). ``a = ½, b = ½``: flow
    matching. Anything else raises :class:`UnsupportedModelError` naming the model type.
    """
    a, b = float(latent_coefficient), float(noise_coefficient)
    if math.isclose(a, 1.0, abs_tol=_TOLERANCE) and math.isclose(b, 0.5, abs_tol=_TOLERANCE):
        return NoiseLevel(is_flow=False, model_name=model_name)
    if math.isclose(a, 0.5, abs_tol=_TOLERANCE) and math.isclose(b, 0.5, abs_tol=_TOLERANCE):
        return NoiseLevel(is_flow=True, model_name=model_name)
    name = f"{model_name} models" if model_name else "this model type"
    raise UnsupportedModelError(
        f"soft inpainting does not support {name}: its sampler input is {a:g}·x0 + {b:g}·noise at "
        f"sigma 0.5, neither a noise level (x0 + sigma·noise) nor flow matching "
        f"((1 - sigma)·x0 + sigma·noise)")


def noise_level_from_noise_scaling(noise_scaling: Callable[..., Any], model_name: str = "",
                                   device: torch.device | str | None = None) -> NoiseLevel:
    """The mapping read from a host's ``noise_scaling(sigma, noise, latent)`` at σ = ½.

    It is called twice with a one-element batch (``sigma`` shaped ``[1]``, ``noise`` and ``latent``
    ``[1, 1, 1, 1]``): once with noise 0 and latent 1 (gives ``a``), once the other way (``b``).
    A model sampling that cannot be called so is refused with :class:`UnsupportedModelError`.
    """
    def probe(noise: float, latent: float) -> float:
        sigma = torch.full((1,), 0.5, device=device)
        out = noise_scaling(sigma, torch.full((1, 1, 1, 1), noise, device=device),
                            torch.full((1, 1, 1, 1), latent, device=device))
        return float(torch.as_tensor(out).reshape(-1)[0])

    name = f"{model_name} models" if model_name else "this model type"
    try:
        a, b = probe(0.0, 1.0), probe(1.0, 0.0)
    except Exception as error:  # a model sampling without the usual noise_scaling
        raise UnsupportedModelError(f"soft inpainting: cannot read the noise schedule of {name} "
                                    f"({type(error).__name__}: {error}); this model type is not "
                                    f"supported") from error
    return noise_level_from_coefficients(a, b, model_name)
