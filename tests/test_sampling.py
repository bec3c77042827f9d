"""The Euler sampler of ``integrations.sampling`` and the blends of ``integrations.workflow``.

The sampler must call the mask blend in the WebUI's k-diffusion hook order: the model, then the
blend with that step's sigma, then the step from the blended prediction; once per step; then the
final blend once after the last step.
"""

from __future__ import annotations

import pytest
import torch

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask, latent_blend
from lib_soft_inpainting.integrations.sampling import img2img_sigmas, karras_sigmas, sample_euler
from lib_soft_inpainting.integrations.workflow import HardBlend, SoftBlend, latent_nmask

SIGMA_MIN, SIGMA_MAX = 0.0292, 14.6146


class Recorder:
    """A denoiser and a blend that write down every call, in order."""

    def __init__(self, blended_value: float | None = None) -> None:
        self.events: list[tuple] = []
        self.blended_value = blended_value
        self.denoised: list[torch.Tensor] = []
        self.inputs: list[torch.Tensor] = []

    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        self.events.append(("model", sigma))
        self.inputs.append(x.clone())
        prediction = x * 0.5 + 0.1
        self.denoised.append(prediction)
        return prediction

    def __call__(self, current: torch.Tensor, sigma: float) -> torch.Tensor:
        self.events.append(("blend", sigma))
        assert current is self.denoised[-1]  # the blend sees this step's prediction itself
        if self.blended_value is not None:
            return torch.full_like(current, self.blended_value)
        return current * 0.9

    def final(self, samples: torch.Tensor) -> torch.Tensor:
        self.events.append(("final",))
        self.final_input = samples
        return samples * 2


def test_karras_schedule():
    sigmas = karras_sigmas(10, SIGMA_MIN, SIGMA_MAX, rho=7.0)
    assert sigmas.shape == (11,) and sigmas.dtype == torch.float64
    assert float(sigmas[0]) == pytest.approx(SIGMA_MAX) and float(sigmas[-2]) == pytest.approx(SIGMA_MIN)
    assert float(sigmas[-1]) == 0
    assert (sigmas[:-1].diff() < 0).all()
    roots = sigmas[:-1] ** (1 / 7)  # evenly spaced in σ^(1/ρ)
    assert torch.allclose(roots.diff(), roots.diff()[:1].expand(9), atol=1e-12)
    with pytest.raises(ValueError):
        karras_sigmas(0, SIGMA_MIN, SIGMA_MAX)


@pytest.mark.parametrize("steps, strength, expected_steps", [(20, 0.9, 19), (20, 1.0, 20), (10, 0.5, 6),
                                                            (4, 0.1, 1)])
def test_img2img_runs_the_tail_of_the_schedule(steps, strength, expected_steps):
    sigmas = img2img_sigmas(steps, strength, SIGMA_MIN, SIGMA_MAX)
    assert len(sigmas) - 1 == expected_steps == int(min(strength, 0.999) * steps) + 1
    assert torch.equal(sigmas, karras_sigmas(steps, SIGMA_MIN, SIGMA_MAX)[-len(sigmas):])
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            img2img_sigmas(steps, bad, SIGMA_MIN, SIGMA_MAX)


def test_euler_calls_the_blend_in_the_webui_hook_order():
    sigmas = karras_sigmas(5, SIGMA_MIN, SIGMA_MAX)
    recorder = Recorder()
    ticks: list[tuple[int, int]] = []
    sample_euler(recorder.denoise, torch.ones(1, 4, 2, 2), sigmas, recorder,
                 lambda i, n: ticks.append((i, n)))
    expected = []
    for sigma in sigmas[:-1].tolist():
        expected += [("model", sigma), ("blend", sigma)]
    assert recorder.events == [*expected, ("final",)]
    assert ticks == [(i, 5) for i in range(1, 6)]


def test_each_step_moves_from_the_blended_prediction():
    sigmas = karras_sigmas(4, SIGMA_MIN, SIGMA_MAX)
    recorder = Recorder()
    x = torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(0)) * SIGMA_MAX
    result = sample_euler(recorder.denoise, x, sigmas, recorder)
    assert torch.equal(result, recorder.final_input * 2)  # the final blend's output is the result
    inputs = [*recorder.inputs, recorder.final_input]
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        blended = recorder.denoised[i] * 0.9
        expected = inputs[i] + (inputs[i] - blended) / sigma * (sigma_next - sigma)
        assert torch.allclose(inputs[i + 1], expected, rtol=1e-6, atol=1e-6)


def test_the_last_step_lands_on_the_blended_prediction():
    """Euler's last step goes to σ = 0: the sample becomes the blended prediction itself."""
    recorder = Recorder(blended_value=0.25)
    result = sample_euler(recorder.denoise, torch.randn(2, 4, 2, 2), karras_sigmas(3, SIGMA_MIN, SIGMA_MAX),
                          recorder)
    assert torch.allclose(result, torch.full((2, 4, 2, 2), 0.5), atol=1e-6)


def test_without_a_blend_the_sampler_is_plain_euler():
    sigmas = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    result = sample_euler(lambda x, sigma: torch.zeros_like(x), torch.full((1, 1, 1, 1), 4.0), sigmas)
    # x ← x + x/σ·(σ' − σ) = x·σ'/σ: 4 → 2 → 0
    assert torch.equal(result, torch.zeros(1, 1, 1, 1))


def test_soft_blend_is_the_core_stage_1_with_the_first_sigma():
    settings = SoftInpaintingSettings(mask_blend_power=0.7, mask_blend_scale=1.5)
    generator = torch.Generator().manual_seed(1)
    init = torch.randn(1, 4, 6, 6, generator=generator)
    current = torch.randn(2, 4, 6, 6, generator=generator)
    nmask = torch.rand(4, 6, 6, generator=generator)
    sigma = torch.tensor([3.0, 3.0])
    blended = SoftBlend(settings, init, nmask)(current, sigma)
    t = get_modified_nmask(settings, nmask, 3.0)
    expected = latent_blend(settings, init.expand_as(current), current, t)
    assert torch.allclose(blended, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(SoftBlend(settings, init, nmask)(current, 1.0), expected, atol=1e-3)
    assert SoftBlend(settings, init, nmask).final(current) is current


def test_hard_blend_pastes_the_original_every_step_and_at_the_end():
    generator = torch.Generator().manual_seed(2)
    init = torch.randn(1, 4, 4, 4, generator=generator)
    current = torch.randn(1, 4, 4, 4, generator=generator)
    nmask = torch.zeros(4, 4, 4)
    nmask[:, 1:3, 1:3] = 1
    blend = HardBlend(init, nmask)
    for out in (blend(current, 5.0), blend.final(current)):
        assert torch.equal(out[:, :, 0], init[:, :, 0])
        assert torch.equal(out[:, :, 1:3, 1:3], current[:, :, 1:3, 1:3])


def test_latent_mask_keeps_grey_levels_unless_rounded():
    from PIL import Image

    for level in (100, 200):
        mask = Image.new("L", (8, 8), level)
        soft = latent_nmask(mask, 4, 2, channels=4)
        assert soft.shape == (4, 2, 4)
        assert torch.allclose(soft, torch.full((4, 2, 4), level / 255))
        rounded = latent_nmask(mask, 4, 2, channels=4, round_mask=True)
        assert torch.equal(rounded, torch.full((4, 2, 4), float(level > 127)))
        # a transparent RGBA picture is read by its alpha, as the host reads it
        rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
        rgba.putalpha(mask)
        assert torch.equal(latent_nmask(rgba, 4, 2, channels=4), soft)
