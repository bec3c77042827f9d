"""Soft inpainting for diffusers' Stable Diffusion, SD3 and Flux pipelines (needs the ``diffusers`` extra).

Supported (and their subclasses), with a grey mask (white = regenerate, black = keep, grey =
opacity): ``StableDiffusionInpaintPipeline``, ``StableDiffusionImg2ImgPipeline`` and their XL
variants; ``StableDiffusion3InpaintPipeline``, ``StableDiffusion3Img2ImgPipeline``;
``FluxInpaintPipeline``, ``FluxImg2ImgPipeline`` and ``FluxFillPipeline``.

How it meets the pipelines:

- **Stage 1, every step, in the WebUI's k-diffusion hook order.** The WebUI blends the model's
  *denoised prediction* (after classifier-free guidance) with the original latent, then lets the
  sampler step. diffusers' pipelines hand the guided model output to ``scheduler.step``, so while
  :func:`soft_inpaint` runs, that scheduler's ``step`` is wrapped (on the instance, restored
  afterwards): the output is turned into the prediction ``x̂₀``, blended
  (``get_modified_nmask`` + ``latent_blend``), and turned back into the scheduler's own
  parameterisation (epsilon, v or sample) before the real step runs. Every scheduler then steps
  from the blended prediction, whatever its order or history.
- **The noise level σ of a step** is the k-diffusion sigma ``sqrt((1 − ᾱ) / ᾱ)`` at that step, the
  quantity the WebUI's k-diffusion samplers pass to the blend: ``scheduler.sigmas`` at the
  scheduler's own step counter for schedulers that keep sigmas (Euler, Euler a, Heun, LMS, DPM++,
  UniPC; a timestep can repeat there, so it is not looked up by value), converted from the
  timestep through ``alphas_cumprod`` for the others (DDIM, DDPM, PNDM). It is never the raw
  timestep (0–999), which would turn the soft mask binary. KDPM2's second sub-step gets its
  interpolated noise level, the one its model call ran at.
- **Flow-matching schedulers** (SD3, Flux: found out from the scheduler's own forward process,
  :mod:`.diffusers_flow`): the model output is a velocity, ``x̂₀ = sample − σ·v`` is blended at the
  equivalent noise level ``σ / (1 − σ)`` and the scheduler steps with the velocity of the blended
  prediction. Flux's packed latents are unpacked for the blend, so it is the blend of the
  ``[B, 16, h, w]`` latents.
- **The pipeline's own mask** (inpaint pipelines). diffusers binarises a grey mask at 0.5 (as the
  WebUI rounds it without soft inpainting) and, with an ordinary denoiser (UNet or transformer
  whose input is the latent alone), pastes the noised original over the latents outside it after
  every step: the host's hard blend, which soft inpainting replaces. So an ordinary denoiser gets
  an all-white mask (no paste; stage 1 alone keeps the original, exactly as in the WebUI), and a
  denoiser that takes the mask as conditioning (more input than output channels: SD's 9-channel
  UNet, SD3's 33-channel transformer, Flux Fill, which pastes nothing) gets the region that may
  change at all: every pixel with a grey level above 0.
- **Stage 2 on the decoded result.** The pipeline returns latents; they are decoded here (the
  pipeline's safety checker and SDXL's watermark, when present, still apply), and the original
  (its transparency flattened onto ``background``, as the WebUI does) is composited over
  them through masks made from how much each region changed. The original is encoded with the
  VAE's posterior mode, and that is the latent the blend keeps where the mask is black, so the
  latent distance there is practically 0 and stage 2 keeps the original pixels exactly.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import pictures
from ..blend import timestep_to_sigma
from ..noise_level import NoiseLevel, UnsupportedModelError
from ..settings import SoftInpaintingSettings
from .diffusers_flow import flow_blended_output, scheduler_noise_level, unpack_latents
from .workflow import BACKGROUND, SoftBlend, latent_nmask, mask_from_picture, soft_composite

try:
    import diffusers
    from diffusers import (
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
    )
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("soft inpainting with diffusers needs the optional extra: "
                      "pip install \"soft-inpainting[diffusers]\" (diffusers and transformers)") from error

__all__ = [
    "SoftInpaintOutput",
    "UnsupportedSchedulerError",
    "pipeline_kind",
    "scheduler_mapping",
    "soft_inpaint",
    "soft_inpainting_steps",
    "step_sigma",
]


def _available(*names: str) -> tuple[type, ...]:
    """The named pipeline classes this diffusers has (older releases lack the flow pipelines)."""
    return tuple(cls for cls in (getattr(diffusers, name, None) for name in names) if cls is not None)


INPAINT_PIPELINES = (StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline,
                     *_available("StableDiffusion3InpaintPipeline", "FluxInpaintPipeline"))
IMG2IMG_PIPELINES = (StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline,
                     *_available("StableDiffusion3Img2ImgPipeline", "FluxImg2ImgPipeline"))
# Inpainting models that take the mask and the masked picture as conditioning and paste nothing.
FILL_PIPELINES = _available("FluxFillPipeline")

# Schedulers whose sample is x₀ + σ·ε (k-diffusion's convention; the pipeline divides by
# sqrt(σ² + 1) before the UNet). The others keep the variance-preserving sample √ᾱ·x₀ + √(1−ᾱ)·ε.
_SIGMA_SCALED = frozenset({
    "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
    "LMSDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
})


class UnsupportedSchedulerError(ValueError):
    """A scheduler whose prediction cannot be expressed as x̂₀ for the blend (EDM, unknown processes)."""


def pipeline_kind(pipe: Any) -> str:
    """``"inpaint"``, ``"img2img"`` or ``"fill"``; a ValueError names the supported pipelines otherwise."""
    if isinstance(pipe, FILL_PIPELINES):
        return "fill"
    if isinstance(pipe, INPAINT_PIPELINES):
        return "inpaint"
    if isinstance(pipe, IMG2IMG_PIPELINES):
        return "img2img"
    names = ", ".join(cls.__name__ for cls in (*INPAINT_PIPELINES, *IMG2IMG_PIPELINES, *FILL_PIPELINES))
    raise ValueError(f"soft inpainting supports {names}; got {type(pipe).__name__}")


def _sigma_scaled(scheduler: Any) -> bool:
    name = type(scheduler).__name__
    if "EDM" in name or getattr(scheduler, "alphas_cumprod", None) is None:
        raise UnsupportedSchedulerError(f"soft inpainting cannot blend with {name}: use a DDPM-family "
                                        "scheduler (Euler, DPM++, DDIM, UniPC, ...) or, for flow-matching "
                                        "models, FlowMatchEulerDiscreteScheduler")
    if name in _SIGMA_SCALED:
        return True
    return getattr(scheduler, "sigmas", None) is not None and float(scheduler.init_noise_sigma) > 1.0


def _coming_step_index(scheduler: Any, timestep: torch.Tensor | float) -> int | None:
    """The index into ``scheduler.sigmas`` that the coming ``step`` call will use, if it keeps one.

    The scheduler's own counter when it has started; before its first step, the index it will
    start from (``begin_index``, set by img2img pipelines, else its own timestep look-up). A look-up
    by timestep value alone is wrong where a schedule repeats a timestep (Heun's interleaved
    steps, rounded Karras timesteps).
    """
    index = getattr(scheduler, "step_index", None)
    if index is None:
        index = getattr(scheduler, "begin_index", None)
    if index is None and callable(getattr(scheduler, "index_for_timestep", None)):
        timesteps = getattr(scheduler, "timesteps", None)
        if isinstance(timestep, torch.Tensor) and timesteps is not None:
            timestep = timestep.to(timesteps.device)
        index = scheduler.index_for_timestep(timestep)
    return None if index is None else int(index)


def step_sigma(scheduler: Any, timestep: torch.Tensor | float) -> float:
    """The k-diffusion noise level σ = sqrt((1 − ᾱ)/ᾱ) of the sample the scheduler steps from (for a
    flow-matching scheduler, its own σ between 0 and 1).

    Call it before the scheduler's ``step`` for that timestep (the step advances the counter).
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if isinstance(sigmas, torch.Tensor) and sigmas.numel() > 1:
        index = _coming_step_index(scheduler, timestep)
        if index is not None and 0 <= index < sigmas.numel():
            # KDPM2's second sub-step evaluates the model at an interpolated noise level
            interpolated = getattr(scheduler, "sigmas_interpol", None)
            if interpolated is not None and not getattr(scheduler, "state_in_first_order", True):
                return float(interpolated[index])
            return float(sigmas[index])
        timesteps = getattr(scheduler, "timesteps", None)
        if timesteps is not None and len(sigmas) >= len(timesteps):
            hits = (timesteps.detach().cpu().float() == float(timestep)).nonzero()
            if hits.numel():
                return float(sigmas[int(hits[0, 0])])
    return float(timestep_to_sigma(torch.as_tensor(timestep).cpu(), scheduler.alphas_cumprod.cpu()))


Blend = Callable[[torch.Tensor, float], torch.Tensor]


def _blended_output(model_output: torch.Tensor, sample: torch.Tensor, sigma: float, sigma_scaled: bool,
                    prediction_type: str, blend: Blend) -> torch.Tensor:
    """The model output whose prediction x̂₀ is the blended one (same parameterisation)."""
    alpha = 1.0 / math.sqrt(1.0 + sigma * sigma)  # √ᾱ
    noise = sigma * alpha  # √(1 − ᾱ)
    out = model_output.float()
    x = sample.float() * alpha if sigma_scaled else sample.float()  # variance-preserving sample
    if prediction_type == "epsilon":
        x0 = (x - noise * out) / alpha
    elif prediction_type == "v_prediction":
        x0 = alpha * x - noise * out
    elif prediction_type == "sample":
        x0 = out
    else:
        raise UnsupportedSchedulerError(f"soft inpainting cannot blend prediction type {prediction_type!r}")
    x0 = blend(x0, sigma)
    if prediction_type == "epsilon":
        out = (x - alpha * x0) / noise
    elif prediction_type == "v_prediction":
        out = (alpha * x - x0) / noise
    else:
        out = x0
    return out.to(model_output.dtype)


def scheduler_mapping(scheduler: Any) -> NoiseLevel:
    """How the scheduler's σ becomes the schedule's noise level (``.is_flow``: flow matching; else
    the DDPM family, read in k-diffusion terms, σ a noise level already). Unsupported schedulers
    raise :class:`UnsupportedSchedulerError` naming them."""
    try:
        return scheduler_noise_level(scheduler)
    except UnsupportedModelError as error:
        raise UnsupportedSchedulerError(str(error)) from None


@contextlib.contextmanager
def soft_inpainting_steps(scheduler: Any, blend: Blend,
                          latent_size: tuple[int, int] | None = None) -> Iterator[None]:
    """While active, ``scheduler.step`` steps from the blended prediction (stage 1, every step).

    ``blend(x0, sigma)`` is the per-step blend, e.g. a :class:`~.workflow.SoftBlend`; ``sigma`` is
    the step's noise level (for flow-matching schedulers the equivalent ``σ / (1 − σ)``). Usable with
    any pipeline that calls ``scheduler.step(model_output, timestep, sample, ...)``.
    ``latent_size = (h, w)`` unpacks packed (Flux) latents for the blend.
    """
    level = scheduler_mapping(scheduler)
    sigma_scaled = False if level.is_flow else _sigma_scaled(scheduler)
    original = scheduler.step
    if level.is_flow:
        @functools.wraps(original)
        def step(model_output, timestep, sample, *args, **kwargs):
            sigma = step_sigma(scheduler, timestep)
            model_output = flow_blended_output(model_output, sample, sigma, level, blend, latent_size)
            return original(model_output, timestep, sample, *args, **kwargs)
    else:
        prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")

        @functools.wraps(original)
        def step(model_output, timestep, sample, *args, **kwargs):
            sigma = step_sigma(scheduler, timestep)
            model_output = _blended_output(model_output, sample, sigma, sigma_scaled, prediction_type, blend)
            return original(model_output, timestep, sample, *args, **kwargs)

    had_own = "step" in vars(scheduler)
    scheduler.step = step
    try:
        yield
    finally:
        if had_own:
            scheduler.step = original
        else:
            del scheduler.step


@dataclass
class SoftInpaintOutput:
    """Final pictures, the compositing masks used, and the latents behind them."""

    images: list[Image.Image]
    masks: list[Image.Image]
    decoded: list[Image.Image]
    latents: torch.Tensor
    init_latents: torch.Tensor
    nmask: torch.Tensor
    nsfw_content_detected: list[bool] | None = None


def _default_size(image: Image.Image, multiple: int) -> tuple[int, int]:
    """The image's size rounded down to ``multiple`` (at least one ``multiple``)."""
    return tuple(max(multiple, side // multiple * multiple) for side in image.size)  # type: ignore[return-value]


@contextlib.contextmanager
def _vae_in_float32_if_needed(vae: Any) -> Iterator[None]:
    """SDXL's VAE overflows in float16 (``force_upcast``); run it in float32 for the moment."""
    dtype = vae.dtype
    upcast = dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    try:
        yield
    finally:
        if upcast:
            vae.to(dtype)


def _latent_stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None, None
    shape = (1, len(mean), 1, 1)
    return torch.tensor(mean).view(shape).to(like), torch.tensor(std).view(shape).to(like)


@torch.no_grad()
def encode_image(pipe: Any, image: Image.Image, width: int, height: int) -> torch.Tensor:
    """The original's latents (the posterior mode), scaled the way the pipeline scales them."""
    vae = pipe.vae
    pixels = pipe.image_processor.preprocess(image, height=height, width=width)
    with _vae_in_float32_if_needed(vae):
        dist = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist
        latents = dist.mode().float()
    mean, std = _latent_stats(vae, latents)
    if mean is not None:
        return (latents - mean) * vae.config.scaling_factor / std
    shift = getattr(vae.config, "shift_factor", None)
    if shift is not None:  # SD3, Flux
        return (latents - shift) * vae.config.scaling_factor
    return latents * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(pipe: Any, latents: torch.Tensor) -> tuple[list[Image.Image], list[bool] | None]:
    """Pictures from latents as the pipeline would make them, safety checker included."""
    vae = pipe.vae
    mean, std = _latent_stats(vae, latents.float())
    shift = getattr(vae.config, "shift_factor", None)
    if mean is not None:
        scaled = latents.float() * std / vae.config.scaling_factor + mean
    elif shift is not None:
        scaled = latents.float() / vae.config.scaling_factor + shift
    else:
        scaled = latents.float() / vae.config.scaling_factor
    with _vae_in_float32_if_needed(vae):
        pixels = vae.decode(scaled.to(device=vae.device, dtype=vae.dtype), return_dict=False)[0]
    nsfw = None
    if getattr(pipe, "safety_checker", None) is not None and hasattr(pipe, "run_safety_checker"):
        pixels, nsfw = pipe.run_safety_checker(pixels, pixels.device, pixels.dtype)
    watermark = getattr(pipe, "watermark", None)  # SDXL pipelines, when invisible-watermark is installed
    if watermark is not None:
        pixels = watermark.apply_watermark(pixels)
    images = pipe.image_processor.postprocess(pixels.float(), output_type="pil",
                                              do_denormalize=[True] * pixels.shape[0])
    return images, nsfw


def _denoiser(pipe: Any) -> Any:
    """The pipeline's UNet (SD, SDXL) or transformer (SD3, Flux)."""
    return pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer


def takes_mask_conditioning(pipe: Any) -> bool:
    """Whether the denoiser reads more than the latent it denoises: the mask and masked picture as
    conditioning (SD's 9-channel UNet, SD3's 33-channel transformer, Flux Fill)."""
    config = _denoiser(pipe).config
    out_channels = getattr(config, "out_channels", None) or config.in_channels
    return int(config.in_channels) > int(out_channels)


def _pipeline_mask(pipe: Any, grey: Image.Image) -> Image.Image:
    """The mask handed to an inpaint pipeline (see the module docstring).

    Ordinary denoiser: all white, so the pipeline never pastes the original (its hard blend); stage
    1 is the only blend. A denoiser conditioned on the mask: white wherever the grey mask lets
    anything change.
    """
    if not takes_mask_conditioning(pipe):
        return Image.new("L", grey.size, 255)
    return Image.fromarray(np.where(np.asarray(grey) > 0, 255, 0).astype(np.uint8), mode="L")


def soft_inpaint(pipe: Any, image: Image.Image, mask_image: Image.Image,
                 prompt: str | list[str] | None = None, *, settings: SoftInpaintingSettings | None = None,
                 width: int | None = None, height: int | None = None, strength: float = 0.75,
                 background: str = BACKGROUND, **pipe_kwargs: Any) -> SoftInpaintOutput:
    """Run ``pipe`` with soft inpainting (both stages) and return the composited pictures.

    ``mask_image`` is grey: white = regenerate, black = keep, grey = opacity (a transparent RGBA
    picture is read by its alpha). ``width``/``height`` default to the image's size rounded down to
    a multiple of 8; the image and mask are resized to it. Other keyword arguments
    (``negative_prompt``, ``num_inference_steps``, ``guidance_scale``, ``generator``,
    ``num_images_per_prompt``, ...) go to the pipeline.
    """
    kind = pipeline_kind(pipe)
    settings = settings or SoftInpaintingSettings()
    for unsupported in ("output_type", "padding_mask_crop"):
        if unsupported in pipe_kwargs:
            raise ValueError(f"soft_inpaint does not accept {unsupported}: it returns full-size pictures "
                             "composited over the original")
    # Flux packs 2x2 latent pixels: its image processor asks for twice the VAE's factor
    processor_factor = getattr(getattr(getattr(pipe, "image_processor", None), "config", None),
                               "vae_scale_factor", 8)
    multiple = math.lcm(8, int(getattr(pipe, "vae_scale_factor", 8)), int(processor_factor))
    original = pictures.flatten(image, background)  # transparency onto the background, as the host does
    grey = mask_from_picture(mask_image)
    if grey.size != original.size:
        raise ValueError(f"the mask is {grey.size[0]}x{grey.size[1]} but the image is "
                         f"{original.size[0]}x{original.size[1]}")
    default_w, default_h = _default_size(original, multiple)
    width, height = width or default_w, height or default_h
    if width % multiple or height % multiple:
        raise ValueError(f"width and height must be multiples of {multiple}, got {width}x{height}")
    if original.size != (width, height):
        original = original.resize((width, height), resample=Image.Resampling.LANCZOS)
        grey = grey.resize((width, height), resample=Image.Resampling.BICUBIC)

    init_latents = encode_image(pipe, original, width, height)
    channels, latent_h, latent_w = init_latents.shape[1:]
    device = init_latents.device
    nmask = latent_nmask(grey, latent_w, latent_h, channels).to(device)
    blend = SoftBlend(settings, init_latents, nmask)

    call: dict[str, Any] = dict(prompt=prompt, strength=strength, output_type="latent", **pipe_kwargs)
    if kind == "img2img":
        call.update(image=init_latents.to(_denoiser(pipe).dtype))
        if "height" in inspect.signature(pipe.__call__).parameters:  # SD3, Flux (SD and SDXL have none)
            call.update(width=width, height=height)
    else:
        call.update(image=original, mask_image=_pipeline_mask(pipe, grey), width=width, height=height)
    with soft_inpainting_steps(pipe.scheduler, blend, latent_size=(latent_h, latent_w)):
        latents = pipe(**call).images
    if latents.dim() == 3:  # Flux's packed latents
        latents = unpack_latents(latents, latent_h, latent_w)
    latents = blend.final(latents)

    decoded, nsfw = decode_latents(pipe, latents)
    made = soft_composite(settings, nmask, init_latents, latents.float(), decoded, original, background)
    return SoftInpaintOutput(images=made.images, masks=made.masks, decoded=decoded, latents=latents,
                             init_latents=init_latents, nmask=nmask, nsfw_content_detected=nsfw)
