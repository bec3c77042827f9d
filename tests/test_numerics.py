"""Edges of every setting and every tensor the host can hand over give defined, finite results
(issue 3, items 2 and 3)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import lib_soft_inpainting.composite as composite
from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    latent_difference_masks,
    weighted_histogram_filter,
)
from lib_soft_inpainting.blend import timestep_to_sigma
from lib_soft_inpainting.pictures import static_composite


def latents(seed: int, shape=(2, 4, 9, 7), dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 2).to(dtype)


def grey_mask(shape=(4, 9, 7), seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g)


EDGES = [
    dict(inpaint_detail_preservation=1), dict(inpaint_detail_preservation=32),
    dict(mask_blend_power=0), dict(mask_blend_power=8), dict(mask_blend_scale=0),
    dict(composite_difference_threshold=0), dict(composite_difference_contrast=0),
    dict(composite_mask_influence=1), dict(composite_mask_influence=1, composite_difference_threshold=0),
]


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
@pytest.mark.parametrize("sigma", [0.0, 0.03, 1.0, 14.6, 999.0])
def test_setting_edges_are_finite(edge, sigma):
    s = SoftInpaintingSettings(**edge)
    a, b = latents(0), latents(1)
    nmask = grey_mask()
    nmask[:, 0, 0] = 0
    nmask[:, 1, 1] = 1
    t = get_modified_nmask(s, nmask, torch.tensor(sigma))
    assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    out = latent_blend(s, a, b, t)
    assert out.dtype == b.dtype and torch.isfinite(out).all()
    masks = latent_difference_masks(s, nmask, a, b)
    assert masks.dtype == torch.uint8 and masks.shape == (2, 9, 7)


def test_contrast_boost_one_is_the_plain_length_interpolation():
    s = SoftInpaintingSettings(inpaint_detail_preservation=1)
    a, b = latents(0), latents(1)
    t = grey_mask()
    out = latent_blend(s, a, b, t)
    t0 = t[0][None, None]
    want = (1 - t0) * a.norm(dim=1, keepdim=True) + t0 * b.norm(dim=1, keepdim=True)
    assert torch.allclose(out.norm(dim=1, keepdim=True), want, rtol=1e-4, atol=1e-4)


def test_threshold_zero_keeps_original_where_nothing_changed_and_shows_changes():
    s = SoftInpaintingSettings(composite_difference_threshold=0)
    a = latents(0, (1, 4, 12, 12))
    b = a.clone()
    b[:, :, 6:, :] += 3.0
    masks = latent_difference_masks(s, torch.ones(4, 12, 12), a, b)
    assert masks[0, :2].max() == 0          # 0/0: defined as "keep the original"
    assert masks[0, 9:].min() == 255        # x/0 with x > 0: the change shows


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_latents(dtype):
    s = SoftInpaintingSettings()
    a32, b32 = latents(0), latents(1)
    t = get_modified_nmask(s, grey_mask(), torch.tensor(2.0))
    want = latent_blend(s, a32, b32, t)
    got = latent_blend(s, a32.to(dtype), b32.to(dtype), t.to(dtype))
    assert got.dtype == dtype and torch.isfinite(got).all()
    tol = {torch.float16: 2e-2, torch.bfloat16: 8e-2, torch.float32: 1e-6}[dtype]
    err = (got.float() - want).norm(dim=1) / want.norm(dim=1).clamp_min(1e-3)
    assert err.max() < tol
    masks = latent_difference_masks(s, grey_mask().to(dtype), a32.to(dtype), b32.to(dtype))
    ref = latent_difference_masks(s, grey_mask(), a32.to(dtype).float(), b32.to(dtype).float())
    assert torch.equal(masks, ref)


def test_zero_vectors_blend_to_zero():
    s = SoftInpaintingSettings(inpaint_detail_preservation=32)
    zeros = torch.zeros(1, 4, 3, 3)
    out = latent_blend(s, zeros, zeros, torch.full((4, 3, 3), 0.5))
    assert torch.equal(out, zeros)
    empty = torch.zeros(1, 4, 0, 5)
    assert latent_blend(s, empty, empty, torch.zeros(4, 0, 5)).shape == (1, 4, 0, 5)


def test_masks_outside_unit_range_are_clamped():
    s = SoftInpaintingSettings()
    a, b = latents(0), latents(1)
    wild = grey_mask() * 4 - 2
    t = get_modified_nmask(s, wild, torch.tensor(0.7))
    assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    assert torch.equal(latent_blend(s, a, b, wild), latent_blend(s, a, b, wild.clamp(0, 1)))
    assert torch.equal(latent_difference_masks(s, wild, a, b), latent_difference_masks(s, wild.clamp(0, 1), a, b))


def test_all_zero_and_all_one_masks():
    s = SoftInpaintingSettings()
    a, b = latents(0), latents(1)
    keep = latent_blend(s, a, b, get_modified_nmask(s, torch.zeros(4, 9, 7), torch.tensor(5.0)))
    assert torch.allclose(keep, a, rtol=1e-5, atol=1e-5)
    take = latent_blend(s, a, b, get_modified_nmask(s, torch.ones(4, 9, 7), torch.tensor(5.0)))
    assert torch.allclose(take, b, rtol=1e-5, atol=1e-5)


def test_batched_and_unbatched_nmask_agree():
    s = SoftInpaintingSettings()
    a, b = latents(0), latents(1)
    m = grey_mask()
    batched = m[None].expand(2, -1, -1, -1)
    assert torch.equal(latent_blend(s, a, b, m), latent_blend(s, a, b, batched))
    assert torch.equal(latent_difference_masks(s, m, a, b), latent_difference_masks(s, batched, a, b))


def test_batch_mismatch_is_a_clear_error():
    s = SoftInpaintingSettings()
    with pytest.raises(ValueError, match="batch of 3 but the latents have 2"):
        latent_blend(s, latents(0), latents(1), torch.rand(3, 4, 9, 7))
    with pytest.raises(ValueError, match="differ in shape"):
        latent_blend(s, latents(0), latents(1, (2, 4, 9, 8)), grey_mask())
    with pytest.raises(ValueError, match="mask is"):
        latent_difference_masks(s, torch.rand(4, 5, 5), latents(0), latents(1))


@pytest.mark.parametrize("shape", [(1, 4, 1, 1), (1, 4, 1, 9), (3, 4, 7, 1), (2, 4, 13, 11)])
def test_tiny_and_odd_latents(shape):
    s = SoftInpaintingSettings()
    a, b = latents(0, shape), latents(1, shape)
    m = grey_mask(shape[1:])
    assert torch.isfinite(latent_blend(s, a, b, m)).all()
    assert latent_difference_masks(s, m, a, b).shape == (shape[0], *shape[2:])


class Float64Spy(TorchDispatchMode):
    """Records every op that produces a float64 tensor."""

    def __init__(self):
        super().__init__()
        self.float64_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, tuple | list) else (out,)
        if any(isinstance(o, torch.Tensor) and o.dtype == torch.float64 for o in outs):
            self.float64_ops.append(str(func))
        return out


def test_stage1_never_uses_float64():
    s = SoftInpaintingSettings(inpaint_detail_preservation=32)
    a, b, m = latents(0), latents(1), grey_mask()
    with Float64Spy() as spy:
        latent_blend(s, a, b, get_modified_nmask(s, m, torch.tensor(3.0)))
    assert spy.float64_ops == []


def test_float32_only_path_for_devices_without_float64(monkeypatch):
    """MPS has no float64: force that path on CPU and check it asks for none and stays close."""
    s = SoftInpaintingSettings()
    a, b, m = latents(0, (2, 4, 24, 20)), latents(1, (2, 4, 24, 20)), grey_mask((4, 24, 20))
    reference = latent_difference_masks(s, m, a, b)
    monkeypatch.setattr(composite, "accumulate_dtype_for", lambda device: torch.float32)
    with Float64Spy() as spy:
        masks = latent_difference_masks(s, m, a, b)
    assert spy.float64_ops == []
    assert (masks.int() - reference.int()).abs().max() <= 1

    kernel, center = get_gaussian_kernel(1.5, 2)
    d = (b - a).norm(dim=1)
    exact = weighted_histogram_filter(d, kernel, center, 0.25, 0.75, 1.0)
    kernel32 = torch.as_tensor(kernel, dtype=torch.float32)
    with Float64Spy() as spy:
        fast = weighted_histogram_filter(d, kernel32, center, 0.25, 0.75, 1.0, accumulate_dtype=torch.float32)
    assert spy.float64_ops == []
    assert (fast - exact).abs().max() < 1e-4


def test_static_path_works_for_batched_and_unbatched_masks():
    from PIL import Image

    s = SoftInpaintingSettings()
    overlay = Image.new("RGB", (56, 72), (10, 200, 30)).convert("RGBA")
    for nmask in (grey_mask(), grey_mask()[None].expand(2, -1, -1, -1)):
        result = static_composite(s, nmask, [overlay], 2, 56, 72, None)
        assert len(result.masks) == 2 and result.masks[0].size == (56, 72)
        assert result.overlays[0].mode == "RGBA"


def test_timestep_to_sigma_matches_the_schedule():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    for step in (0, 250, 999):
        want = ((1 - alphas[step]) / alphas[step]).sqrt().item()
        got = timestep_to_sigma(torch.tensor([float(step)]), alphas)[0].item()
        assert got == pytest.approx(want, rel=1e-5)
    assert timestep_to_sigma(torch.tensor([2000.0]), alphas).isfinite().all()


def test_settings_constructor_warns_only_once_per_clamp():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SoftInpaintingSettings(composite_difference_threshold=9)
    assert len(caught) == 1
