"""The per-step soft blend inside ComfyUI's sampler (SPEC §5, §13).

ComfyUI blends twice per step in ``KSamplerX0Inpaint``: the noisy input with the re-noised
original, and the model's prediction with the original. The WebUI with a k-diffusion sampler does
only the second, through ``on_mask_blend``. The patch reproduces that:

- a ``SAMPLER_SAMPLE`` wrapper sees the scaled original latent and the prepared noise mask, starts a
  run (all state of one sampling job lives on it), and calls the sampler with ``denoise_mask=None``,
  so neither hard blend happens;
- a post-CFG function, added to that run's own copy of the model options (so it runs last, after
  any other post-CFG patch, and disappears with the run), replaces the prediction with
  ``latent_blend(original, prediction, get_modified_nmask(nmask, sigma))``.

Guiders that skip post-CFG functions: where the host has ``PREDICT_NOISE`` wrappers, one of them
blends the guider's prediction instead (same result); otherwise the step callback finds that no
blend happened and stops the job with a clear error. Flow-matching models (sigma in 0–1, input
``(1 − σ)·x₀ + σ·ε``) get the schedule at the equivalent noise level ``σ / (1 − σ)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask, latent_blend
from lib_soft_inpainting.noise_level import NoiseLevel, UnsupportedModelError, noise_level_from_noise_scaling

LOG = logging.getLogger("soft_inpainting")
WRAPPER_KEY = "soft_inpainting"
RUN_KEY = "soft_inpainting_run"


class SoftInpaintingError(RuntimeError):
    """Soft inpainting cannot act correctly on this job; the message says why and what to do."""


def wrapper_types() -> Any:
    """ComfyUI's ``WrappersMP``, or a clear error on a host without sampler wrappers."""
    try:
        from comfy.patcher_extension import WrappersMP
    except ImportError as error:
        raise SoftInpaintingError(
            "Apply Soft Inpainting needs ComfyUI's sampler wrappers (comfy.patcher_extension, "
            "ComfyUI from December 2024 on); please update ComfyUI") from error
    return WrappersMP


def patch_model(model: Any, settings: SoftInpaintingSettings) -> Any:
    """A clone of the ModelPatcher ``model`` that soft-inpaints when its latent has a noise mask."""
    kinds = wrapper_types()
    if not hasattr(model, "add_wrapper_with_key"):
        raise SoftInpaintingError("Apply Soft Inpainting needs a MODEL with sampler wrappers "
                                  "(ModelPatcher.add_wrapper_with_key); please update ComfyUI")
    patched = model.clone()
    for kind in (kinds.SAMPLER_SAMPLE, getattr(kinds, "PREDICT_NOISE", None)):
        if kind is not None and hasattr(patched, "remove_wrappers_with_key"):
            patched.remove_wrappers_with_key(kind, WRAPPER_KEY)  # a second Apply replaces the first
    patched.add_wrapper_with_key(kinds.SAMPLER_SAMPLE, WRAPPER_KEY, _sampler_sample_wrapper(settings))
    if hasattr(kinds, "PREDICT_NOISE"):
        patched.add_wrapper_with_key(kinds.PREDICT_NOISE, WRAPPER_KEY, _predict_noise_wrapper)
    return patched


def model_noise_level(model_sampling: Any) -> NoiseLevel:
    """How this model's sigma becomes the schedule's noise level, read by the core from the model
    sampling's own ``noise_scaling``; a model of neither kind stops the job with a clear error."""
    try:
        noise_scaling = getattr(model_sampling, "noise_scaling", None)
        return noise_level_from_noise_scaling(noise_scaling, type(model_sampling).__name__)
    except UnsupportedModelError as error:
        raise SoftInpaintingError(str(error)) from error


class Run:
    """One sampling job on the patched model: its original latent, mask, and bookkeeping."""

    def __init__(self, settings: SoftInpaintingSettings, latent_image: torch.Tensor, nmask: torch.Tensor,
                 noise_level: NoiseLevel, guider_name: str) -> None:
        self.settings = settings
        self.latent_image = latent_image
        self.nmask = nmask
        self.noise_level = noise_level
        self.guider_name = guider_name
        self.blends = 0            # soft blends done in this run
        self.blends_at_step = 0    # ... when the sampler last reported a step
        self.fallback_noted = False

    def blend(self, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The soft blend of this step's prediction (SPEC §5), sigma of the batch's first item."""
        sigma = sigma.reshape(-1)[0] if isinstance(sigma, torch.Tensor) else torch.as_tensor(sigma)
        t = get_modified_nmask(self.settings, self.nmask, self.noise_level(sigma))
        self.blends += 1
        return latent_blend(self.settings, self.latent_image.to(denoised.device), denoised, t)

    def post_cfg(self, args: dict[str, Any]) -> torch.Tensor:
        return self.blend(args["denoised"], args["sigma"])

    def step_callback(self, callback: Callable[..., Any] | None) -> Callable[..., Any]:
        """The sampler's step callback, first checking that this step was blended."""

        def on_step(step: int, denoised: Any, x: Any, total_steps: int) -> Any:
            if self.blends == self.blends_at_step:
                raise SoftInpaintingError(
                    f"soft inpainting: the guider {self.guider_name} did not call ComfyUI's post-CFG "
                    f"functions at step {step}, so the soft blend could not run. Use it with CFGGuider, "
                    f"BasicGuider, KSampler or KSamplerAdvanced, or a ComfyUI with predict_noise wrappers")
            self.blends_at_step = self.blends
            if callback is not None:
                return callback(step, denoised, x, total_steps)
            return None

        return on_step


_RESIZE_LEVELS = (0.25, 0.5, 0.75)  # what ComfyUI's bilinear 8× resize makes of a 0/1 edge


def _is_binary(mask: torch.Tensor) -> bool:
    """Whether every value of the noise mask the user made is 0 or 1 (nothing grey to blend).

    The sampler hands on the mask resized to the latent (bilinear), which puts ¼, ½ or ¾ on the
    latent pixels that a 0/1 edge crosses (SD's 8×). So a value other than 0 or 1 counts as binary
    only when it is one of those and lies on such an edge: a 0 or a 1 among its 3×3 neighbours. A
    uniform grey (``SolidMask`` 0.5), a grey band wider than that, or a blurred mask is not binary.
    """
    m = mask[:, :1].float()
    if m.ndim != 4:  # not an image mask: only an exact 0/1 counts
        return bool(((m <= 1e-6) | (m >= 1 - 1e-6)).all())
    zero, one = m <= 1e-6, m >= 1 - 1e-6
    between = ~(zero | one)
    if not bool(between.any()):
        return True
    on_level = torch.zeros_like(between)
    for level in _RESIZE_LEVELS:
        on_level |= (m - level).abs() <= 1e-4
    if not bool(on_level[between].all()):
        return False
    near = torch.nn.functional.max_pool2d
    near_zero = near(zero.float(), 3, stride=1, padding=1) > 0
    near_one = near(one.float(), 3, stride=1, padding=1) > 0
    return bool((near_zero | near_one)[between].all())


def _start_run(settings: SoftInpaintingSettings, guider: Any, latent_image: torch.Tensor,
               denoise_mask: torch.Tensor, model_options: dict[str, Any]) -> Run:
    """Read what the job gives, say what matters in the console, and make its Run."""
    noise_level = model_noise_level(guider.inner_model.model_sampling)
    if noise_level.is_flow:
        LOG.info("soft inpainting: %s", noise_level.description)
    if "denoise_mask_function" in model_options:
        LOG.warning("soft inpainting: this model also has a denoise mask function (DifferentialDiffusion "
                    "or similar); soft inpainting replaces it, so it is not called")
    if _is_binary(denoise_mask):
        LOG.warning("soft inpainting: the noise mask is binary (0 and 1 only), so there is no grey "
                    "transition to blend. VAEEncodeForInpaint rounds its mask; use SetLatentNoiseMask or "
                    "InpaintModelConditioning with a blurred mask")
    return Run(settings, latent_image, denoise_mask, noise_level, type(guider).__name__)


def _sampler_sample_wrapper(settings: SoftInpaintingSettings) -> Callable[..., Any]:
    def sampler_sample(executor: Any, guider: Any, sigmas: torch.Tensor, extra_args: dict[str, Any],
                       callback: Any, noise: torch.Tensor, latent_image: torch.Tensor,
                       denoise_mask: torch.Tensor | None, disable_pbar: bool) -> torch.Tensor:
        if denoise_mask is None:  # no noise mask: not an inpainting job, nothing to do (SPEC §3)
            return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                            disable_pbar)
        model_options = extra_args["model_options"]  # this run's own copy
        run = _start_run(settings, guider, latent_image, denoise_mask, model_options)
        model_options[RUN_KEY] = run
        model_options["sampler_post_cfg_function"] = [*model_options.get("sampler_post_cfg_function", []),
                                                      run.post_cfg]
        try:
            return executor(guider, sigmas, extra_args, run.step_callback(callback), noise, latent_image,
                            None, disable_pbar)
        finally:
            model_options.pop(RUN_KEY, None)
            model_options["sampler_post_cfg_function"] = [
                fn for fn in model_options["sampler_post_cfg_function"] if fn != run.post_cfg]

    return sampler_sample


def _predict_noise_wrapper(executor: Any, x: torch.Tensor, timestep: torch.Tensor,
                           model_options: dict[str, Any], seed: Any) -> torch.Tensor:
    """Blends the guider's prediction when the guider skipped the post-CFG functions."""
    run = model_options.get(RUN_KEY) if isinstance(model_options, dict) else None
    if run is None:
        return executor(x, timestep, model_options, seed)
    before = run.blends
    out = executor(x, timestep, model_options, seed)
    if run.blends == before:
        if not run.fallback_noted:
            LOG.warning("soft inpainting: the guider %s skips ComfyUI's post-CFG functions; soft "
                        "inpainting blends its prediction instead", run.guider_name)
            run.fallback_noted = True
        out = run.blend(out, timestep)
    return out
