"""The diffusers adapter on flow-matching pipelines (SD3, Flux, Flux Fill), tiny and random, built in code.

Every step is checked against an oracle written from SPEC §5 and §14: from the sample ``x`` and
the model's velocity ``v`` the pipeline's transformer saw, ``x̂₀ = x − σ·v`` (Flux: unpacked to
``[B, 16, h, w]``), blended by the float64 oracle at the noise level ``σ / (1 − σ)``, then the Euler
step ``x + (σ_next − σ)·(x − x̂₀′)/σ``; the next sample the transformer sees must be that (so nothing
was pasted in between).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    EDMEulerScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
)
from diffusers_helpers import SIZE, far_from_mask, gradient_picture, grey_mask
from oracle import oracle_get_modified_nmask, oracle_latent_blend, oracle_latent_difference_masks
from tiny_pipelines import FLOW_CHANNELS, tiny_flux, tiny_sd3

import lib_soft_inpainting.integrations.diffusers_pipeline as adapter
import lib_soft_inpainting.pictures as pictures
from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.integrations.diffusers_flow import (
    flow_blended_output,
    pack_latents,
    scheduler_noise_level,
    unpack_latents,
)
from lib_soft_inpainting.integrations.workflow import SoftBlend
from lib_soft_inpainting.noise_level import NoiseLevel

STEPS = 4
# beyond this many pixels from the painted mask, stage 2 keeps the original exactly (see the SD tests)
FRINGE = 14

PIPELINES = {
    "sd3-inpaint": lambda: tiny_sd3("inpaint"),
    "sd3-inpaint-33ch": lambda: tiny_sd3("inpaint", transformer_channels=33),
    "sd3-img2img": lambda: tiny_sd3("img2img"),
    "flux-inpaint": lambda: tiny_flux("inpaint"),
    "flux-img2img": lambda: tiny_flux("img2img"),
    "flux-fill": lambda: tiny_flux("fill"),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")




def run(pipe: Any, strength: float = 1.0, steps: int = STEPS, settings: SoftInpaintingSettings | None = None,
        **kwargs: Any) -> adapter.SoftInpaintOutput:
    if "max_sequence_length" in adapter.inspect.signature(pipe.__call__).parameters:
        kwargs.setdefault("max_sequence_length", 8)  # Flux's T5 prompt length; the default is 512
    return adapter.soft_inpaint(pipe, gradient_picture(), grey_mask(), "a cat", settings=settings,
                                num_inference_steps=steps, strength=strength, guidance_scale=1.0,
                                generator=torch.Generator().manual_seed(0), **kwargs)




class TransformerRecorder:
    """Every transformer call's latent input (the sample; Flux Fill's conditioning split off) and output."""

    def __init__(self, pipe: Any) -> None:
        self.samples: list[torch.Tensor] = []
        self.conditioning: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        self.features = FLOW_CHANNELS * 4 if pipe.transformer.config.in_channels != FLOW_CHANNELS else None
        self.sd3_channels = FLOW_CHANNELS
        self.handle = pipe.transformer.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output) -> None:
        hidden = kwargs["hidden_states"].detach().clone()
        if hidden.dim() == 3:  # Flux: tokens; Fill appends its conditioning to each token
            self.samples.append(hidden[..., :FLOW_CHANNELS * 4])
            self.conditioning.append(hidden[..., FLOW_CHANNELS * 4:])
        else:  # SD3: channels; the 33-channel transformer appends mask and masked picture
            self.samples.append(hidden[:, :FLOW_CHANNELS])
            self.conditioning.append(hidden[:, FLOW_CHANNELS:])
        self.outputs.append(output[0].detach().clone())


# ---------------------------------------------------------------- the oracle (SPEC §5, §14)


def oracle_unpack(tokens: np.ndarray, height: int, width: int) -> np.ndarray:
    """Token ``(i, j)`` (index ``i·w/2 + j``), feature ``c·4 + dy·2 + dx`` is latent pixel
    ``(c, 2i + dy, 2j + dx)``."""
    batch, _, features = tokens.shape
    out = np.zeros((batch, features // 4, height, width))
    grid = tokens.reshape(batch, height // 2, width // 2, features)
    for dy in range(2):
        for dx in range(2):
            out[:, :, dy::2, dx::2] = grid[..., dy * 2 + dx::4].transpose(0, 3, 1, 2)
    return out


def oracle_pack(latents: np.ndarray) -> np.ndarray:
    batch, channels, height, width = latents.shape
    grid = np.zeros((batch, height // 2, width // 2, channels * 4))
    for dy in range(2):
        for dx in range(2):
            grid[..., dy * 2 + dx::4] = latents[:, :, dy::2, dx::2].transpose(0, 2, 3, 1)
    return grid.reshape(batch, -1, channels * 4)


def oracle_flow_step(settings, init: np.ndarray, nmask: np.ndarray, sample: np.ndarray, velocity: np.ndarray,
                     sigma: float, sigma_next: float) -> np.ndarray:
    """One soft-inpainting Euler step of a flow-matching model, in float64."""
    x0 = sample - sigma * velocity
    packed = x0.ndim == 3
    if packed:
        x0 = oracle_unpack(x0, *init.shape[-2:])
    level = sigma / max(1.0 - sigma, 1e-4)  # SPEC §14, with the core's cap
    t = oracle_get_modified_nmask(settings, nmask, level)
    x0 = oracle_latent_blend(settings, np.broadcast_to(init, x0.shape), x0, t)
    if packed:
        x0 = oracle_pack(x0)
    return sample + (sigma_next - sigma) * (sample - x0) / sigma


@pytest.mark.parametrize("name", sorted(PIPELINES))
@pytest.mark.parametrize("strength", [1.0, 0.75])
def test_every_step_is_the_oracles_soft_flow_step(name, strength, recording):
    pipe = PIPELINES[name]()
    recorder = TransformerRecorder(pipe)
    settings = SoftInpaintingSettings(mask_blend_scale=1.5)
    out = run(pipe, strength=strength, settings=settings)
    recorder.handle.remove()

    scheduler = pipe.scheduler
    used = len(recorder.samples)
    assert used == int(STEPS * strength) == len(recording.last.calls)
    sigmas = scheduler.sigmas[-used - 1:].double().tolist()  # the steps run, then the final 0
    assert sigmas[-1] == 0 and sigmas[0] == pytest.approx(1.0 if strength == 1 else sigmas[0])
    # the blend got the equivalent noise level of each step, not the raw sigma
    assert recording.last.calls == pytest.approx([s / max(1 - s, 1e-4) for s in sigmas[:-1]], rel=1e-5)

    init = out.init_latents.double().numpy()
    nmask = out.nmask.double().numpy()
    final = out.latents.double().numpy()
    if recorder.samples[0].dim() == 3:
        final = oracle_pack(final)
    nexts = [s.double().numpy() for s in recorder.samples[1:]] + [final]
    for i in range(used):
        expected = oracle_flow_step(settings, init, nmask, recorder.samples[i].double().numpy(),
                                    recorder.outputs[i].double().numpy(), sigmas[i], sigmas[i + 1])
        scale = np.abs(expected).max()
        assert np.abs(nexts[i] - expected).max() <= 2e-5 * scale, f"step {i}"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_both_stages_keep_the_original_outside_the_mask(name):
    pipe = PIPELINES[name]()
    mask = grey_mask()
    out = run(pipe)
    assert "step" not in vars(pipe.scheduler)
    assert out.latents.shape == (1, FLOW_CHANNELS, SIZE // 2, SIZE // 2)
    outside, inside = out.nmask[0] == 0, out.nmask[0] > 0.9
    drift = (out.latents - out.init_latents).norm(dim=1)[0]
    assert drift[outside].max() < 1e-4 and drift[inside].mean() > 0.1
    # grey latent pixels blend: moved from the original, less than the white core on average
    ring = (out.nmask[0] > 0.1) & (out.nmask[0] < 0.6)
    assert ring.sum() >= 4 and 0 < drift[ring].mean() < drift[inside].mean()
    result = np.asarray(out.images[0]).astype(int)
    original = np.asarray(gradient_picture()).astype(int)
    kept = np.asarray(out.masks[0]) == 0
    assert np.array_equal(result[kept], original[kept])
    far = far_from_mask(mask, FRINGE)
    assert far.sum() > 100 and kept[far].all()


# ---------------------------------------------------------------- the pipelines' own masks


def test_the_hard_paste_is_neutralised_and_conditioned_models_get_the_region():
    grey = grey_mask()
    region = np.asarray(grey) > 0
    for make in (lambda: tiny_sd3("inpaint"), lambda: tiny_flux("inpaint")):
        pipe = make()
        assert not adapter.takes_mask_conditioning(pipe)
        assert (np.asarray(adapter._pipeline_mask(pipe, grey)) == 255).all()
    for make in (lambda: tiny_sd3("inpaint", transformer_channels=33), lambda: tiny_flux("fill")):
        pipe = make()
        assert adapter.takes_mask_conditioning(pipe)
        assert np.array_equal(np.asarray(adapter._pipeline_mask(pipe, grey)) == 255, region)


def test_flux_fill_is_conditioned_on_the_region_that_may_change():
    pipe = tiny_flux("fill")
    recorder = TransformerRecorder(pipe)
    run(pipe, steps=2)
    recorder.handle.remove()
    assert adapter.pipeline_kind(pipe) == "fill"
    scale = pipe.vae_scale_factor
    half = SIZE // scale
    for conditioning in recorder.conditioning:  # every step: the masked picture's latent, then the mask
        mask_tokens = conditioning[..., FLOW_CHANNELS * 4:]
        per_pixel = unpack_latents(mask_tokens, half, half)[0]  # [scale², h, w]: pixel (y, x) of the picture
        picture = per_pixel.reshape(scale, scale, half, half).permute(2, 0, 3, 1).reshape(SIZE, SIZE)
        assert np.array_equal(picture.numpy() > 0.5, np.asarray(grey_mask()) > 0)


def test_the_pipelines_own_flow_inpainting_differs():
    """The pipeline alone binarises the mask and pastes; soft inpainting does not."""
    pipe = tiny_sd3("inpaint")
    soft = run(pipe).images[0]
    plain = pipe(prompt="a cat", image=gradient_picture(), mask_image=grey_mask(), num_inference_steps=STEPS,
                 strength=1.0, guidance_scale=1.0, width=SIZE, height=SIZE,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert np.abs(np.asarray(soft).astype(int) - np.asarray(plain).astype(int)).mean() > 2


# ---------------------------------------------------------------- packing, the step, detection


def test_packed_latents_blend_exactly_as_the_unpacked_ones():
    generator = torch.Generator().manual_seed(3)
    settings = SoftInpaintingSettings(mask_blend_scale=2.0)
    init = torch.randn(1, FLOW_CHANNELS, 6, 8, generator=generator)
    nmask = torch.rand(6, 8, generator=generator)[None].repeat(FLOW_CHANNELS, 1, 1)
    blend = SoftBlend(settings, init, nmask)
    sample = torch.randn(2, FLOW_CHANNELS, 6, 8, generator=generator)
    velocity = torch.randn(2, FLOW_CHANNELS, 6, 8, generator=generator)
    level = NoiseLevel(is_flow=True)
    spatial = flow_blended_output(velocity, sample, 0.6, level, blend)
    packed = flow_blended_output(pack_latents(velocity), pack_latents(sample), 0.6, level, blend, (6, 8))
    assert torch.equal(unpack_latents(packed, 6, 8), spatial)
    # a channel norm over a packed token (64 features of 4 pixels) would be another blend
    token_blend = SoftBlend(settings, pack_latents(init).transpose(1, 2)[..., None],
                            pack_latents(nmask[None]).transpose(1, 2)[0, ..., None])
    x0 = pack_latents(sample - 0.6 * velocity).transpose(1, 2)[..., None]
    wrong = token_blend(x0, level(0.6))[..., 0].transpose(1, 2)
    right = pack_latents(sample) - 0.6 * packed
    assert not torch.allclose(wrong, right, atol=1e-3)
    with pytest.raises(ValueError, match="latent size"):
        flow_blended_output(pack_latents(velocity), pack_latents(sample), 0.6, level, blend)


def test_the_scheduler_steps_from_the_blended_prediction():
    """FlowMatchEuler's own step lands on (1 − σ_next)·x̂₀′ + σ_next·ε̂: x̂₀′ is the blend's result."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(5)
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(1, 4, 4, 4, generator=generator)
    sample = torch.randn(1, 4, 4, 4, generator=generator)
    seen: list[float] = []

    def blend(x0, level):
        seen.append(level)
        return target

    with adapter.soft_inpainting_steps(scheduler, blend):
        for i, t in enumerate(scheduler.timesteps):
            sigma, sigma_next = float(scheduler.sigmas[i]), float(scheduler.sigmas[i + 1])
            velocity = torch.randn(1, 4, 4, 4, generator=generator)
            prev = scheduler.step(velocity, t, sample).prev_sample
            blended_velocity = (sample - target) / sigma
            assert torch.allclose(prev, sample + (sigma_next - sigma) * blended_velocity, atol=1e-5)
            sample = prev
    assert "step" not in vars(scheduler)
    assert sample.allclose(target, atol=1e-5)  # the last step lands on x̂₀′ (σ_next = 0)
    expected = [s / max(1 - s, 1e-4) for s in scheduler.sigmas[:-1].tolist()]
    assert seen == pytest.approx(expected, rel=1e-5)


def test_an_identity_blend_changes_nothing_in_flow_steps():
    generator = torch.Generator().manual_seed(2)
    velocity = torch.randn(2, 16, 4, 4, generator=generator)
    sample = torch.randn(2, 16, 4, 4, generator=generator)
    out = flow_blended_output(velocity, sample, 0.4, NoiseLevel(is_flow=True), lambda x0, level: x0)
    assert torch.allclose(out, velocity, atol=1e-5)


def test_flow_is_read_from_the_schedulers_forward_process():
    assert scheduler_noise_level(FlowMatchEulerDiscreteScheduler(shift=3.0)).is_flow
    assert scheduler_noise_level(FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)).is_flow
    assert adapter.scheduler_mapping(tiny_flux().scheduler).is_flow
    for family in (EulerDiscreteScheduler(), DDIMScheduler()):  # DDPM family: k-diffusion sigmas
        level = scheduler_noise_level(family)
        assert not level.is_flow and level(2.5) == 2.5


class NoiseAddingScheduler(FlowMatchEulerDiscreteScheduler):
    """A made-up scheduler whose forward process adds noise without scaling the sample."""

    def scale_noise(self, sample, timestep, noise=None):
        return sample + self.sigmas[0] * noise


class DoublingScheduler(FlowMatchEulerDiscreteScheduler):
    """A made-up scheduler whose forward process is neither flow matching nor a noise level."""

    def scale_noise(self, sample, timestep, noise=None):
        return 2 * sample + noise


@pytest.mark.parametrize("scheduler", [
    NoiseAddingScheduler(), DoublingScheduler(), EDMEulerScheduler(),
    type("FlowMatchEulerDiscreteScheduler", (), {})(),  # a name alone does not make a flow scheduler
], ids=["noise-adding", "doubling", "edm", "named-only"])
def test_unsupported_schedulers_are_refused_by_name(scheduler):
    with pytest.raises(adapter.UnsupportedSchedulerError, match=type(scheduler).__name__), \
            adapter.soft_inpainting_steps(scheduler, None):
        pass
    assert "step" not in vars(scheduler)


def test_width_and_height_must_suit_the_packing():
    pipe = tiny_flux("img2img")
    with pytest.raises(ValueError, match="multiples of 8"):
        run(pipe, width=36)


def test_stage_2_measures_the_16_channel_change_per_channel_as_for_4_channels(monkeypatch):
    """The compositing masks come from the distance over 16 channels scaled by √(4/16) (the oracle's
    step 3 with ``reference_channels=4``), not from the plain 16-channel norm."""
    seen = []
    real = pictures.latent_difference_masks

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(pictures, "latent_difference_masks", spy)
    settings = SoftInpaintingSettings(composite_difference_threshold=1.0)
    out = run(tiny_flux("inpaint"), settings=settings)
    assert len(seen) == 1
    ours = seen[0].cpu().numpy().astype(int)
    per_channel = oracle_latent_difference_masks(settings, out.nmask, out.init_latents, out.latents, 4)
    plain = oracle_latent_difference_masks(settings, out.nmask, out.init_latents, out.latents, None)
    difference = np.abs(ours - per_channel.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.001  # SPEC §9
    assert np.abs(ours - plain.astype(int)).max() > 10  # the plain norm would be another mask


@pytest.mark.parametrize("make, extra", [
    (lambda: tiny_sd3("inpaint"), {"guidance_scale": 3.0}),  # classifier-free guidance: a doubled batch
    (lambda: tiny_flux("inpaint"), {}),
], ids=["sd3-cfg", "flux"])
def test_a_batch_gets_one_blend_and_composite_per_picture(make, extra):
    pipe = make()
    kwargs = {"max_sequence_length": 8} if "max_sequence_length" in adapter.inspect.signature(
        pipe.__call__).parameters else {}
    out = adapter.soft_inpaint(pipe, gradient_picture(), grey_mask(), "a cat", num_inference_steps=2,
                               num_images_per_prompt=2, generator=torch.Generator().manual_seed(0),
                               **{"guidance_scale": 1.0, **extra}, **kwargs)
    assert len(out.images) == len(out.masks) == 2 and out.latents.shape[0] == 2
    drift = (out.latents - out.init_latents).norm(dim=1)
    assert drift[:, out.nmask[0] == 0].max() < 1e-4
    assert not torch.equal(out.latents[0], out.latents[1])


def test_flow_heun_steps_from_the_blended_prediction_at_each_model_calls_sigma():
    """Heun's second model call runs at the next sigma; the blend gets that call's noise level."""
    from diffusers import FlowMatchHeunDiscreteScheduler

    scheduler = FlowMatchHeunDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(4)
    target = torch.randn(1, 4, 4, 4, generator=generator)
    sample = torch.randn(1, 4, 4, 4, generator=generator)
    seen: list[float] = []
    calls = len(scheduler.timesteps)
    with adapter.soft_inpainting_steps(scheduler, lambda x0, level: seen.append(level) or target):
        for t in scheduler.timesteps:
            sample = scheduler.step(torch.randn(1, 4, 4, 4, generator=generator), t, sample).prev_sample
    assert sample.allclose(target, atol=1e-5)
    expected = [s / max(1 - s, 1e-4) for s in scheduler.sigmas[:calls].tolist()]
    assert seen == pytest.approx(expected, rel=1e-5)
