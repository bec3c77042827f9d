"""The noise level of each step in the WebUI family, found out per job from what the model provides.

The schedule of ``get_modified_nmask`` is made for noise levels (SPEC §5, §14). What a host's
sampler hands to ``on_mask_blend`` as ``sigma`` is not always one:

- a flow-matching model (A1111 1.10's SD3; Flux, Chroma, Qwen-Image, SD3 … on Forge ``main`` and
  Neo) passes its σ in 0–1; the core maps it to ``σ / (1 − σ)``;
- A1111's timestep samplers (DDIM, PLMS, UniPC) pass a timestep (0–999), converted through the
  model's ``alphas_cumprod``; the Forge family converts it itself before any blend.

Whether a model is flow matching is read from its model-sampling object's
``noise_scaling(sigma, noise, latent)`` (the core decides from the coefficients at σ = ½), found
where the hosts keep it:

- Forge ``main`` and Neo: ``p.sd_model.forge_objects.unet.model.predictor`` (every model family,
  SD1 included; its own input-side blend calls the same method);
- A1111 1.10 SD3: ``p.sd_model.model.model_sampling`` (``ModelSamplingDiscreteFlow`` of
  ``modules/models/sd3/sd3_impls.py``; ``p.sd_model`` is the ``SD3Inferencer``).

An A1111 SD1/SD2/SDXL model has no such object: its sigma is the noise level, as it always was.
"""

from __future__ import annotations

from typing import Any

from lib_soft_inpainting.blend import timestep_to_sigma
from lib_soft_inpainting.composite import REFERENCE_CHANNELS
from lib_soft_inpainting.noise_level import (
    SIGMA_IS_NOISE_LEVEL,
    NoiseLevel,
    UnsupportedModelError,
    noise_level_from_noise_scaling,
)

from . import host_paths

__all__ = ["MODEL_SAMPLING_PATHS", "SIGMA_IS_NOISE_LEVEL", "UnsupportedModelError",
           "distance_reference_channels", "find_model_sampling", "job_noise_level", "model_type",
           "step_noise_level"]

MODEL_SAMPLING_PATHS: tuple[tuple[str, ...], ...] = (
    ("forge_objects", "unet", "model", "predictor"),  # Forge main, Neo
    ("model", "model_sampling"),  # A1111 1.10 SD3
)


def _follow(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        try:
            obj = getattr(obj, name, None)
        except Exception:  # a lazily loaded attribute that fails to load: not this layout
            return None
        if obj is None:
            return None
    return obj


def find_model_sampling(sd_model: Any) -> Any | None:
    """The model's model-sampling object (one with a callable ``noise_scaling``), or None."""
    for path in MODEL_SAMPLING_PATHS:
        found = _follow(sd_model, path)
        if found is not None and callable(getattr(found, "noise_scaling", None)):
            return found
    return None


def model_type(sd_model: Any, sampling: Any | None = None) -> str:
    """The model's type as a console line names it: its class, and its model sampling's."""
    name = type(sd_model).__name__
    return f"{name} ({type(sampling).__name__})" if sampling is not None else name


def job_noise_level(sd_model: Any) -> NoiseLevel:
    """How this job's model turns its sampler's sigma into a noise level.

    No model-sampling object: the sigma is the noise level (A1111 SD1/SD2/SDXL, unchanged). One
    whose ``noise_scaling`` is neither ``x₀ + σ·ε`` nor ``(1 − σ)·x₀ + σ·ε`` raises
    :class:`UnsupportedModelError` naming the model type.
    """
    sampling = find_model_sampling(sd_model)
    if sampling is None:
        return SIGMA_IS_NOISE_LEVEL
    return noise_level_from_noise_scaling(sampling.noise_scaling, model_type(sd_model, sampling))


def distance_reference_channels(convert: bool) -> int | None:
    """The channel count the latent distance is measured as (None: the plain channel norm).

    With the conversion off the job reproduces the upstream built-in, whose distance is the plain
    norm over however many channels the latents have.
    """
    return REFERENCE_CHANNELS if convert else None


def step_noise_level(noise_level: NoiseLevel, convert: bool, denoiser: Any, sigma: Any
                     ) -> tuple[Any, bool]:
    """The noise level for this step's schedule, and whether a timestep was converted.

    ``convert`` off: the sampler's value as is (the upstream built-in's result). On: an A1111
    timestep sampler's timestep becomes its noise level (the Forge family's has already been turned
    into a sigma), then a flow model's σ becomes ``σ / (1 − σ)`` (capped at σ = 1).
    """
    if not convert:
        return sigma, False
    timestep_converted = False
    alphas = getattr(denoiser, "alphas", None)
    if alphas is not None and getattr(denoiser, "mask_before_denoising", False) \
            and not host_paths.already_real_sigma(denoiser):
        sigma = timestep_to_sigma(sigma, alphas).to(sigma.device)
        timestep_converted = True
    return noise_level(sigma), timestep_converted
