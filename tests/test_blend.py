"""Stage 1 (SPEC §5): latent_blend and get_modified_nmask against the float64 oracle (SPEC §9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import oracle_get_modified_nmask, oracle_latent_blend

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask, latent_blend

BLEND_RTOL = 1e-5   # error vector length ≤ 1e-5 × reference length, per latent pixel
NMASK_ATOL = 1e-6

DENORMAL = float(np.float32(1e-40))  # a float32 denormal
DEEP_DENORMAL = float(np.float32(1e-44))  # seven steps above 0: hardly any digits left
assert 0.0 < DEEP_DENORMAL < DENORMAL < float(np.finfo(np.float32).tiny)


def make_settings(power: float = 1.0, scale: float = 0.5, detail: float = 4.0) -> SoftInpaintingSettings:
    return SoftInpaintingSettings(mask_blend_power=power, mask_blend_scale=scale,
                                  inpaint_detail_preservation=detail, composite_mask_influence=0.0,
                                  composite_difference_threshold=0.5, composite_difference_contrast=2.0)


def latents(seed: int, shape=(2, 4, 6, 7), scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=gen) * scale
    b = torch.randn(shape, generator=gen) * scale
    return a, b


def blend_mask(seed: int, shape) -> torch.Tensor:
    """Uniform weights with some exact 0s and 1s, float32."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(shape, generator=gen)
    t[t < 0.1] = 0.0
    t[t > 0.9] = 1.0
    return t


def assert_blend_close(actual: torch.Tensor, expected: np.ndarray, rtol: float = BLEND_RTOL) -> None:
    """Per latent pixel: |actual − expected| ≤ rtol·|expected| (norms over the channel axis)."""
    got = actual.detach().cpu().to(torch.float64).numpy()
    assert got.shape == expected.shape
    assert np.all(np.isfinite(got))
    err = np.sqrt(np.sum((got - expected) ** 2, axis=1))
    ref = np.sqrt(np.sum(expected ** 2, axis=1))
    worst = np.max(err - rtol * ref)
    ratio = np.max(err / np.where(ref > 0, ref, np.inf))
    assert worst <= 0.0, f"blend error above tolerance: worst err/ref = {ratio:.3g}"


# ---------------------------------------------------------------- latent_blend


@pytest.mark.parametrize("detail", [1.0, 2.0, 4.0, 32.0, 1.5, 8.0])
@pytest.mark.parametrize("batched", [False, True], ids=["CHW", "BCHW"])
def test_latent_blend_matches_oracle(detail, batched):
    a, b = latents(int(detail * 10) + batched, scale=3.0)
    t = blend_mask(7, a.shape if batched else a.shape[1:])
    s = make_settings(detail=detail)
    out = latent_blend(s, a.clone(), b.clone(), t)
    assert out.dtype == torch.float32 and out.shape == a.shape
    assert_blend_close(out, oracle_latent_blend(s, a, b, t))


@pytest.mark.parametrize("detail", [1.0, 2.0, 4.0, 32.0])
def test_latent_blend_broadcasts_a_batch_of_one_mask(detail):
    a, b = latents(3)
    t = blend_mask(4, (1, *a.shape[1:]))
    s = make_settings(detail=detail)
    assert_blend_close(latent_blend(s, a, b, t), oracle_latent_blend(s, a, b, t))


@pytest.mark.parametrize("detail", [1.0, 2.0, 4.0, 32.0])
def test_latent_blend_per_channel_mask_uses_first_channel_for_length(detail):
    """Channels of t may differ: the mix uses each channel, the length uses t[:, 0] only."""
    a, b = latents(5)
    t = blend_mask(6, a.shape)
    t[:, 1:] = torch.rand_like(t[:, 1:])
    s = make_settings(detail=detail)
    assert_blend_close(latent_blend(s, a, b, t), oracle_latent_blend(s, a, b, t))


@pytest.mark.parametrize("detail", [1.0, 2.0, 4.0, 32.0])
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_latent_blend_extreme_t(detail, value):
    a, b = latents(8, scale=4.0)
    s = make_settings(detail=detail)
    t = torch.full(a.shape[1:], value)
    out = latent_blend(s, a, b, t)
    assert_blend_close(out, oracle_latent_blend(s, a, b, t))
    # t = 0 gives the original and t = 1 the current latent, up to the 1e-5 added to |v|
    target = a if value == 0.0 else b
    err = torch.linalg.vector_norm(out - target, dim=1)
    assert torch.all(err <= 1e-5 + 1e-6 * torch.linalg.vector_norm(target, dim=1))


@pytest.mark.parametrize("t_value", [DENORMAL, DEEP_DENORMAL], ids=["t1e-40", "t1e-44"])
@pytest.mark.parametrize("detail, b_len", [(32.0, 10.0), (4.0, 1e8), (8.0, 1e4), (2.0, 1e16)])
def test_latent_blend_denormal_t_with_huge_powered_magnitude(detail, b_len, t_value):
    """SPEC §5 step 3 edge: t is a float32 denormal while |b|^p is huge, so the tiny term decides.

    |a| is drawn around the length that term alone asks for, so both terms matter; a float32
    evaluation of (|a|/|b|)^p then lands among the denormals too and loses most of its digits.
    |b| stays below 1.8e19, where the float32 channel norm itself (upstream's too) overflows, and
    p ≥ 2, since with p = 1 the term can only decide where the result underflows float32.
    """
    gen = torch.Generator().manual_seed(9)
    tiny_len = (t_value * b_len ** detail) ** (1.0 / detail)  # the length the t term alone asks for
    a_dir = torch.randn((1, 4, 5, 6), generator=gen)
    a_len = torch.rand((1, 1, 5, 6), generator=gen) * 1.4 + 0.1
    a = a_dir / torch.linalg.vector_norm(a_dir, dim=1, keepdim=True) * a_len * tiny_len
    b_dir = torch.randn((1, 4, 5, 6), generator=gen)
    b = b_dir / torch.linalg.vector_norm(b_dir, dim=1, keepdim=True) * b_len
    t = torch.full((4, 5, 6), t_value)
    assert t[0, 0, 0].item() == t_value  # really a denormal, not flushed to 0
    s = make_settings(detail=detail)
    expected = oracle_latent_blend(s, a, b, t)
    # The case must matter: without the t·|b|^p term the length would be clearly smaller.
    without_t = oracle_latent_blend(s, a, b, torch.zeros_like(t))
    assert np.max(np.linalg.norm(expected, axis=1) / np.linalg.norm(without_t, axis=1)) > 2.0
    assert_blend_close(latent_blend(s, a, b, t), expected)


@pytest.mark.parametrize("detail", [4.0, 32.0])
def test_latent_blend_t_just_below_one_with_huge_original(detail):
    """The mirror edge: 1 − t is the float32 step below 1 while |a|^p is huge."""
    gen = torch.Generator().manual_seed(10)
    a = torch.randn((1, 4, 3, 5), generator=gen)
    a = a / torch.linalg.vector_norm(a, dim=1, keepdim=True) * 1e3
    b = torch.randn((1, 4, 3, 5), generator=gen) * 0.5
    t = torch.full((1, 4, 3, 5), float(np.nextafter(np.float32(1.0), np.float32(0.0))))
    s = make_settings(detail=detail)
    assert_blend_close(latent_blend(s, a, b, t), oracle_latent_blend(s, a, b, t))


@pytest.mark.parametrize("detail", [1.0, 4.0, 32.0])
def test_latent_blend_tiny_and_mixed_t(detail):
    a, b = latents(11, shape=(2, 4, 4, 4), scale=2.0)
    t = torch.tensor([0.0, DENORMAL, 1e-30, 1e-8, 1e-3, 0.5, 1 - 1e-3, 1.0]).repeat(8)[:16]
    t = t.reshape(1, 4, 4).expand(4, 4, 4).clone()
    s = make_settings(detail=detail)
    assert_blend_close(latent_blend(s, a, b, t), oracle_latent_blend(s, a, b, t))


def test_latent_blend_zero_vectors():
    a, b = latents(12, shape=(1, 4, 3, 3))
    a[..., 0, 0] = 0.0
    b[..., 1, 1] = 0.0
    a[..., 2, 2] = 0.0
    b[..., 2, 2] = 0.0
    t = blend_mask(13, (4, 3, 3))
    s = make_settings()
    out = latent_blend(s, a, b, t)
    assert_blend_close(out, oracle_latent_blend(s, a, b, t))
    assert torch.all(out[..., 2, 2] == 0)


def test_latent_blend_float64_latents_keep_dtype():
    a, b = latents(14)
    a, b = a.double(), b.double()
    t = blend_mask(15, a.shape[1:]).double()
    s = make_settings(detail=32.0)
    out = latent_blend(s, a, b, t)
    assert out.dtype == torch.float64
    assert_blend_close(out, oracle_latent_blend(s, a, b, t))


def test_latent_blend_leaves_inputs_untouched():
    a, b = latents(16)
    t = blend_mask(17, a.shape[1:])
    copies = a.clone(), b.clone(), t.clone()
    latent_blend(make_settings(), a, b, t)
    assert torch.equal(a, copies[0]) and torch.equal(b, copies[1]) and torch.equal(t, copies[2])


# ---------------------------------------------------------------- get_modified_nmask


SIGMAS = [0.0, 0.03, 0.5, 1.0, 2.7, 14.6, 999.0]  # 999: a timestep sampler's "sigma", used as given


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("power, scale", [(1.0, 0.5), (0.0, 0.5), (8.0, 0.5), (1.0, 0.0), (1.0, 8.0),
                                          (0.3, 2.0), (8.0, 8.0)])
def test_get_modified_nmask_matches_oracle(sigma, power, scale):
    gen = torch.Generator().manual_seed(int(sigma * 100) + int(power * 10))
    nmask = torch.rand((2, 4, 5, 6), generator=gen)
    nmask[0, :, 0] = 0.0
    nmask[1, :, 1] = 1.0
    s = make_settings(power=power, scale=scale)
    sigma_t = torch.full((2,), sigma)[0]  # the host hands element 0 of its per-sample sigma tensor
    out = get_modified_nmask(s, nmask, sigma_t)
    assert out.shape == nmask.shape and out.dtype == torch.float32
    expected = oracle_get_modified_nmask(s, nmask, sigma)
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=0, atol=NMASK_ATOL)


@pytest.mark.parametrize("sigma", [0.5, 3.0])
def test_get_modified_nmask_unbatched_mask_and_float_sigma(sigma):
    nmask = torch.rand((4, 6, 5), generator=torch.Generator().manual_seed(3))
    s = make_settings(power=1.5, scale=0.75)
    out = get_modified_nmask(s, nmask, sigma)
    assert out.shape == nmask.shape
    expected = oracle_get_modified_nmask(s, nmask, sigma)
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=0, atol=NMASK_ATOL)


def test_get_modified_nmask_keeps_extremes_and_pushes_grey_toward_original():
    nmask = torch.tensor([0.0, 0.25, 0.5, 1.0]).reshape(1, 1, 4).expand(4, 1, 4)
    s = make_settings(power=1.0, scale=1.0)
    low = get_modified_nmask(s, nmask, torch.tensor(0.5))
    high = get_modified_nmask(s, nmask, torch.tensor(10.0))
    assert torch.all(low[:, :, 0] == 0) and torch.all(low[:, :, 3] == 1)
    assert torch.all(high[:, :, 1:3] < low[:, :, 1:3])
