"""The noise level the schedule is made for, per model family (SPEC §14): the core's mapping."""

from __future__ import annotations

import math

import pytest
import torch

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask
from lib_soft_inpainting.integrations.sampling import img2img_sigmas
from lib_soft_inpainting.noise_level import (
    FLOW_SIGMA_CAP,
    SIGMA_IS_NOISE_LEVEL,
    NoiseLevel,
    UnsupportedModelError,
    flow_noise_level,
    noise_level_from_coefficients,
    noise_level_from_noise_scaling,
)


def eps_noise_scaling(sigma, noise, latent_image):
    """An SD model's sampler input: x₀ + σ·ε."""
    return latent_image + sigma.view(-1, 1, 1, 1) * noise


def flow_noise_scaling(sigma, noise, latent_image):
    """A flow-matching model's sampler input: (1 − σ)·x₀ + σ·ε."""
    sigma = sigma.view(-1, 1, 1, 1)
    return (1 - sigma) * latent_image + sigma * noise


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_flow_noise_level_is_sigma_over_one_minus_sigma(sigma):
    assert flow_noise_level(sigma) == pytest.approx(sigma / (1 - sigma), rel=1e-12)
    tensor = flow_noise_level(torch.tensor([sigma], dtype=torch.float64))
    assert tensor.dtype == torch.float64
    assert float(tensor[0]) == pytest.approx(sigma / (1 - sigma), rel=1e-12)


def test_sigma_one_is_capped_not_infinite():
    """A short img2img schedule can start at σ = 1 exactly: the level is large and finite."""
    assert flow_noise_level(1.0) == pytest.approx(1 / FLOW_SIGMA_CAP)
    level = flow_noise_level(torch.tensor([1.0, 1.5]))
    assert torch.isfinite(level).all()
    nmask = torch.full((4, 2, 2), 0.5)
    t = get_modified_nmask(SoftInpaintingSettings(), nmask, level[0])
    assert torch.equal(t, torch.zeros_like(t))  # pure noise: grey keeps the original entirely


def test_the_identity_mapping_hands_back_the_very_sigma():
    sigma = torch.tensor([3.5])
    assert SIGMA_IS_NOISE_LEVEL(sigma) is sigma
    assert NoiseLevel(is_flow=False, model_name="EPS")(2.0) == 2.0


@pytest.mark.parametrize(("scaling", "is_flow"), [(eps_noise_scaling, False), (flow_noise_scaling, True)])
def test_the_kind_is_read_from_the_models_noise_scaling(scaling, is_flow):
    level = noise_level_from_noise_scaling(scaling, "Model")
    assert level.is_flow is is_flow
    assert "flow-matching" in level.description if is_flow else "noise level" in level.description


def test_coefficients_decide_and_anything_else_is_refused_naming_the_model():
    assert noise_level_from_coefficients(1.0, 0.5).is_flow is False
    assert noise_level_from_coefficients(0.5, 0.5).is_flow is True
    with pytest.raises(UnsupportedModelError, match=r"not support Odd models: its sampler input is 2·x0"):
        noise_level_from_coefficients(2.0, 0.5, "Odd")

    def broken(sigma, noise, latent_image):
        raise TypeError("needs more arguments")

    with pytest.raises(UnsupportedModelError, match="cannot read the noise schedule of Broken models"):
        noise_level_from_noise_scaling(broken, "Broken")


def test_the_mapping_gives_grey_regions_back_their_meaning():
    """SPEC §14's measurement, default settings, mask 0.5, first step of a 0.75-denoise job: an SD
    model keeps most of the original (79 % in SPEC's run; 87 % with 20 Karras steps here); a flow
    model (shift 3) fed its raw σ keeps 27 %, fed its equivalent noise level 96 %."""
    settings = SoftInpaintingSettings()
    grey = torch.full((1, 1, 1), 0.5)

    def kept(sigma: float) -> float:
        return 1 - float(get_modified_nmask(settings, grey, sigma)[0, 0, 0])

    sd_sigma = float(img2img_sigmas(20, 0.75, 0.0292, 14.6146)[0])
    shift, t = 3.0, 0.75
    flow_sigma = shift * t / (1 + (shift - 1) * t)
    flow = noise_level_from_noise_scaling(flow_noise_scaling, "ModelSamplingSD3")
    assert 0.75 < kept(sd_sigma) < 0.9
    assert kept(flow_sigma) == pytest.approx(0.27, abs=0.01)
    assert kept(flow(flow_sigma)) == pytest.approx(0.96, abs=0.01)
    assert math.isclose(flow(flow_sigma), flow_sigma / (1 - flow_sigma))
