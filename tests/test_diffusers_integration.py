"""The diffusers adapter end to end, on tiny random pipelines built in code (nothing downloaded).

Covers SD and SDXL, inpaint and img2img, an inpainting (9-channel) UNet; stage 1 once per
scheduler step with the k-diffusion sigma; the scheduler restored afterwards; stage 2 keeping the
original pixels exactly where nothing may change.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EDMEulerScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2DiscreteScheduler,
)
from diffusers_helpers import SIZE, far_from_mask, gradient_picture, grey_mask
from PIL import Image
from tiny_pipelines import tiny_sd, tiny_sdxl

import lib_soft_inpainting.integrations.diffusers_pipeline as adapter
from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.blend import timestep_to_sigma

STEPS = 4
# Stage 2 spreads a change by the filter, the mask's upscale and its blur; beyond this many
# pixels from the painted mask nothing may differ from the original.
FRINGE = 14
SD_SCHEDULE = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)

PIPELINES = {
    "sd-inpaint": lambda: tiny_sd("inpaint"),
    "sd-img2img": lambda: tiny_sd("img2img"),
    "sd-inpaint-9ch": lambda: tiny_sd("inpaint", unet_channels=9),
    "sdxl-inpaint": lambda: tiny_sdxl("inpaint"),
    "sdxl-img2img": lambda: tiny_sdxl("img2img"),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")




def run(pipe, mask: Image.Image | None = None, steps: int = STEPS, strength: float = 1.0, seed: int = 0,
        **kwargs):
    return adapter.soft_inpaint(pipe, gradient_picture(), mask or grey_mask(), "a cat",
                                num_inference_steps=steps, strength=strength,
                                generator=torch.Generator().manual_seed(seed), **kwargs)




@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_both_stages_on_every_supported_pipeline(name, recording):
    pipe = PIPELINES[name]()
    mask = grey_mask()
    out = run(pipe, mask)

    original = np.asarray(gradient_picture()).astype(int)
    result = np.asarray(out.images[0]).astype(int)
    assert out.images[0].size == (SIZE, SIZE) and out.masks[0].size == (SIZE, SIZE)
    # stage 1 ran once per step; the pipeline's own step is back
    assert len(recording.last.calls) == STEPS
    assert "step" not in vars(pipe.scheduler)
    # stage 1 kept the original latent where the mask is black ...
    outside = out.nmask[0] == 0
    drift = (out.latents - out.init_latents).norm(dim=1)[0][outside]
    assert drift.max() < 1e-4
    # ... and regenerated where it is white
    inside = out.nmask[0] == 1
    assert (out.latents - out.init_latents).norm(dim=1)[0][inside].mean() > 0.1
    # stage 2: where its compositing mask is 0, the original's pixels exactly; far from the painted
    # mask that is everywhere
    kept = np.asarray(out.masks[0]) == 0
    assert np.array_equal(result[kept], original[kept])
    far = far_from_mask(mask, FRINGE)
    assert far.sum() > 500 and kept[far].all()
    # and the generated content shows in the middle
    assert np.abs(result - original)[28:36, 28:36].mean() > 5


def test_inpainting_unet_is_conditioned_on_the_region_and_ordinary_unets_are_not_pasted():
    grey = grey_mask()
    ordinary = np.asarray(adapter._pipeline_mask(tiny_sd("inpaint"), grey))
    assert (ordinary == 255).all()  # no hard paste by the pipeline: stage 1 is the only blend
    region = np.asarray(adapter._pipeline_mask(tiny_sd("inpaint", unet_channels=9), grey))
    assert set(np.unique(region)) == {0, 255}
    assert np.array_equal(region == 255, np.asarray(grey) > 0)


def test_grey_levels_reach_stage_1_unrounded(recording):
    pipe = tiny_sd("inpaint")
    mask = grey_mask()
    out = run(pipe, mask)
    values = out.nmask[0]
    transition = (values > 0.05) & (values < 0.95)
    assert transition.sum() >= 8  # a real grey band at latent size, not 0/1
    expected = np.asarray(mask.resize(values.shape[::-1], Image.Resampling.BICUBIC), np.float32) / 255
    assert np.allclose(values.numpy(), expected, atol=1e-6)
    # the same mask rounded to black and white gives a different picture
    binary = mask.point(lambda v: 255 if v >= 128 else 0)
    rounded = run(tiny_sd("inpaint"), binary)
    assert not np.array_equal(np.asarray(out.images[0]), np.asarray(rounded.images[0]))


def test_differs_from_the_pipelines_own_inpainting():
    pipe = tiny_sd("inpaint")
    soft = run(pipe).images[0]
    plain = pipe(prompt="a cat", image=gradient_picture(), mask_image=grey_mask(), num_inference_steps=STEPS,
                 strength=1.0, width=SIZE, height=SIZE, generator=torch.Generator().manual_seed(0)).images[0]
    difference = np.abs(np.asarray(soft).astype(int) - np.asarray(plain).astype(int))
    assert difference.mean() > 2


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_stage_1_gets_the_k_diffusion_sigma_of_each_step(recording, strength):
    pipe = tiny_sd("img2img")
    steps = 10  # linspace timesteps fall on whole numbers: 999, 888, ..., 0
    run(pipe, steps=steps, strength=strength)
    scheduler = pipe.scheduler
    used = int(steps * strength)
    timesteps = scheduler.timesteps[steps - used:]
    expected = timestep_to_sigma(timesteps, scheduler.alphas_cumprod).tolist()
    sigmas = recording.last.calls
    assert sigmas == pytest.approx(expected, rel=1e-4)
    assert sigmas == pytest.approx(scheduler.sigmas[steps - used:steps].tolist(), rel=1e-6)
    assert max(sigmas) < 20 < min(float(t) for t in timesteps[:-1])  # sigmas, not timesteps (0–999)
    assert sigmas == sorted(sigmas, reverse=True)


def test_timestep_schedulers_get_the_sigma_of_their_timestep(recording):
    pipe = tiny_sd("inpaint")
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    run(pipe)
    expected = timestep_to_sigma(pipe.scheduler.timesteps, pipe.scheduler.alphas_cumprod).tolist()
    assert recording.last.calls == pytest.approx(expected, rel=1e-5)
    assert max(recording.last.calls) < 20


@pytest.mark.parametrize("make", [
    lambda: HeunDiscreteScheduler(**SD_SCHEDULE),
    lambda: DPMSolverMultistepScheduler(**SD_SCHEDULE, use_karras_sigmas=True),
], ids=["heun", "dpmpp_2m_karras"])
def test_repeated_timesteps_still_get_their_own_sigma(make):
    """Heun repeats timesteps; rounded Karras timesteps repeat at 50 steps with different sigmas."""
    scheduler = make()
    scheduler.set_timesteps(50)
    seen: list[float] = []

    def blend(x0: torch.Tensor, sigma: float) -> torch.Tensor:
        seen.append(sigma)
        return x0

    sample = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with adapter.soft_inpainting_steps(scheduler, blend):
        for t in scheduler.timesteps:
            sample = scheduler.step(torch.zeros_like(sample), t, sample).prev_sample
    assert seen == pytest.approx(scheduler.sigmas[:len(scheduler.timesteps)].tolist(), rel=1e-6)


PARAMETERISATIONS = [
    *((cls, kind) for cls in (EulerDiscreteScheduler, DDIMScheduler)
      for kind in ("epsilon", "v_prediction", "sample")),
    (KDPM2DiscreteScheduler, "epsilon"),  # KDPM2 has no "sample" prediction
    (KDPM2DiscreteScheduler, "v_prediction"),
]


@pytest.mark.parametrize("scheduler_cls, prediction_type", PARAMETERISATIONS)
def test_the_scheduler_steps_from_the_blended_prediction(scheduler_cls, prediction_type):
    """Whatever the parameterisation, the scheduler's own x̂₀ is the one the blend returned."""
    extra = {"clip_sample": False} if scheduler_cls is DDIMScheduler else {}
    scheduler = scheduler_cls(**SD_SCHEDULE, prediction_type=prediction_type, **extra)
    scheduler.set_timesteps(5)
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(1, 4, 4, 4, generator=generator)
    sample = torch.randn(1, 4, 4, 4, generator=generator) * float(scheduler.init_noise_sigma)
    with adapter.soft_inpainting_steps(scheduler, lambda x0, sigma: target):
        for t in scheduler.timesteps[:4]:  # KDPM2: two first-order and two interpolated sub-steps
            output = scheduler.step(torch.randn(1, 4, 4, 4, generator=generator), t, sample)
            if not hasattr(output, "pred_original_sample"):
                pytest.skip(f"{scheduler_cls.__name__} does not report its x̂₀ in this diffusers version")
            assert torch.allclose(output.pred_original_sample, target, atol=1e-4)
            sample = output.prev_sample


def test_an_identity_blend_changes_nothing():
    """The conversion to x̂₀ and back is exact up to rounding: no blend, same output."""
    scheduler = EulerDiscreteScheduler(**SD_SCHEDULE)
    scheduler.set_timesteps(6)
    generator = torch.Generator().manual_seed(2)
    model_output = torch.randn(2, 4, 8, 8, generator=generator)
    sample = torch.randn(2, 4, 8, 8, generator=generator) * 5
    for sigma_scaled in (True, False):
        for prediction_type in ("epsilon", "v_prediction", "sample"):
            out = adapter._blended_output(model_output, sample, 3.0, sigma_scaled, prediction_type,
                                          lambda x0, sigma: x0)
            assert torch.allclose(out, model_output, atol=1e-4)


def test_the_scheduler_is_restored_even_when_sampling_fails():
    pipe = tiny_sd("inpaint")
    scheduler = pipe.scheduler

    def failing(x0, sigma):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), adapter.soft_inpainting_steps(scheduler, failing):
        scheduler.set_timesteps(2)
        scheduler.step(torch.zeros(1, 4, 2, 2), scheduler.timesteps[0], torch.zeros(1, 4, 2, 2))
    assert "step" not in vars(scheduler)
    assert scheduler.step.__func__ is type(scheduler).step


def test_settings_change_the_result():
    pipe = tiny_sd("inpaint")
    default = np.asarray(run(pipe).images[0])
    keep_more = SoftInpaintingSettings(mask_blend_scale=4.0, composite_difference_threshold=2.0)
    other = np.asarray(run(pipe, settings=keep_more).images[0])
    assert not np.array_equal(default, other)


def test_a_batch_gets_one_composite_per_picture():
    out = run(tiny_sd("inpaint"), num_images_per_prompt=2)
    assert len(out.images) == len(out.masks) == 2
    assert out.latents.shape[0] == 2
    assert not np.array_equal(np.asarray(out.images[0]), np.asarray(out.images[1]))


def test_a_transparent_picture_is_flattened_onto_the_background():
    picture = gradient_picture().convert("RGBA")
    picture.paste((0, 0, 0, 0), (0, 0, 6, 6))  # a transparent corner, far from the mask
    out = adapter.soft_inpaint(tiny_sd("inpaint"), picture, grey_mask(), "a cat", num_inference_steps=2,
                               background="#00ff00")
    corner = np.asarray(out.images[0])[:6, :6]
    assert (corner == [0, 255, 0]).all()


def test_default_size_rounds_down_to_a_multiple_of_8():
    picture = gradient_picture(70)
    mask = grey_mask(70)
    out = adapter.soft_inpaint(tiny_sd("img2img"), picture, mask, "a cat", num_inference_steps=2)
    assert out.images[0].size == (64, 64)


def test_problems_the_caller_can_fix_are_value_errors():
    pipe = tiny_sd("inpaint")
    with pytest.raises(ValueError, match="the mask is 32x64 but the image is 64x64"):
        adapter.soft_inpaint(pipe, gradient_picture(), grey_mask().crop((0, 0, 32, 64)), "a cat")
    with pytest.raises(ValueError, match="output_type"):
        run(pipe, output_type="pil")
    with pytest.raises(ValueError, match="multiples of 8"):
        run(pipe, width=60)
    with pytest.raises(ValueError, match="supports"):
        adapter.pipeline_kind(object())


def test_schedulers_without_a_readable_noise_schedule_are_refused():
    """EDM and unknown schedulers; flow-matching ones are supported (tests/test_diffusers_flow.py)."""
    for scheduler in (EDMEulerScheduler(), type("SomeScheduler", (), {})()):
        with pytest.raises(adapter.UnsupportedSchedulerError, match=type(scheduler).__name__), \
                adapter.soft_inpainting_steps(scheduler, None):
            pass


def test_step_sigma_matches_the_schedule_formula():
    scheduler = DDIMScheduler(**SD_SCHEDULE)
    for t in (999, 500, 1):
        alpha = float(scheduler.alphas_cumprod[t])
        assert adapter.step_sigma(scheduler, torch.tensor(t)) == pytest.approx(math.sqrt((1 - alpha) / alpha))
