"""Edges of every setting and every tensor the host can hand over give defined, finite results
(issue 3, items 2 and 3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from oracle import oracle_latent_blend
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import lib_soft_inpainting.histogram as histogram
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
    assert torch.equal(latent_difference_masks(s, wild, a, b),
                       latent_difference_masks(s, wild.clamp(0, 1), a, b))


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


@pytest.mark.parametrize("mask_shape", [(3, 4, 9, 7), (0, 4, 9, 7), (4, 5, 5), (4, 9, 8), (3, 9, 7),
                                        (2, 2, 9, 7), (1, 4, 9, 1, 1)])
def test_blend_mask_that_does_not_fit_is_a_clear_error_naming_both_shapes(mask_shape):
    s = SoftInpaintingSettings()
    with pytest.raises(ValueError) as info:
        latent_blend(s, latents(0), latents(1), torch.rand(mask_shape))
    message = str(info.value)
    assert str(mask_shape) in message
    if len(mask_shape) in (3, 4):
        assert "(2, 4, 9, 7)" in message


def test_latents_that_differ_or_are_not_4d_are_a_clear_error():
    s = SoftInpaintingSettings()
    with pytest.raises(ValueError, match=r"\(2, 4, 9, 7\).*\(2, 4, 9, 8\)"):
        latent_blend(s, latents(0), latents(1, (2, 4, 9, 8)), grey_mask())
    with pytest.raises(ValueError, match=r"\(4, 9, 7\).*\[B, C, H, W\]"):  # once returned [1, C, H, W]
        latent_blend(s, latents(0)[0], latents(1)[0], grey_mask())
    with pytest.raises(ValueError, match=r"\(2, 4, 9, 7\).*\(3, 4, 9, 7\)"):
        latent_difference_masks(s, grey_mask(), latents(0), latents(1, (3, 4, 9, 7)))


@pytest.mark.parametrize("mask_shape", [(4, 5, 5), (2, 4, 9, 8), (0, 4, 9, 7), (0, 9, 7)])
def test_difference_mask_that_does_not_fit_is_a_clear_error_naming_both_shapes(mask_shape):
    s = SoftInpaintingSettings()
    with pytest.raises(ValueError) as info:
        latent_difference_masks(s, torch.rand(mask_shape), latents(0), latents(1))
    message = str(info.value)
    assert str(mask_shape) in message
    if mask_shape[-3] != 0:  # no channels is wrong whatever the latents
        assert "(2, 4, 9, 7)" in message


@pytest.mark.parametrize("mask_batch", [1, 3])
def test_difference_masks_pair_mask_items_with_latent_items(mask_batch):
    """SPEC §6 step 6: item i uses mask item i, or item 0 when the mask batch is 1."""
    s = SoftInpaintingSettings(mask_blend_scale=2.0, composite_mask_influence=1.0)
    a, b = latents(0, (3, 4, 9, 7)), latents(1, (3, 4, 9, 7))
    nmask = torch.rand((mask_batch, 4, 9, 7), generator=torch.Generator().manual_seed(mask_batch))
    out = latent_difference_masks(s, nmask, a, b)
    for i in range(3):
        item = nmask[i if i < mask_batch else 0]
        assert torch.equal(out[i], latent_difference_masks(s, item, a[i:i + 1], b[i:i + 1])[0])


@pytest.mark.parametrize("mask_batch", [0, 2, 5])
def test_difference_masks_reject_a_mask_batch_of_another_size(mask_batch):
    """Unlike upstream, which silently paired latent i with mask item 0 when the mask batch was short."""
    nmask = torch.rand((mask_batch, 4, 9, 7))
    with pytest.raises(ValueError, match=r"neither 1 nor the latents' batch") as info:
        latent_difference_masks(SoftInpaintingSettings(), nmask, latents(0, (3, 4, 9, 7)),
                                latents(1, (3, 4, 9, 7)))
    assert str((mask_batch, 4, 9, 7)) in str(info.value) and "(3, 4, 9, 7)" in str(info.value)


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


class NoFloat64(TorchFunctionMode):
    """Fails at the first torch call that asks for float64 or returns a float64 tensor.

    Works at the level of the python API, so it also sees tensors made from numpy float64 arrays
    (``torch.as_tensor``), which on MPS would fail before any kernel runs.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if kwargs.get("dtype") is torch.float64 or any(arg is torch.float64 for arg in args):
            raise AssertionError(f"{name} was asked for float64")
        out = func(*args, **kwargs)
        outs = out if isinstance(out, tuple | list) else (out,)
        if any(isinstance(o, torch.Tensor) and o.dtype == torch.float64 for o in outs):
            raise AssertionError(f"{name} made a float64 tensor")
        return out


def force_no_float64(monkeypatch) -> None:
    """The code path of a device without float64 (MPS), forced on the CPU at its decision point."""
    monkeypatch.setattr(histogram, "float64_supported", lambda device: False)


def test_the_float64_guard_can_fail():
    """On the CPU the filter accumulates in float64 (like upstream), which the guard must catch."""
    s = SoftInpaintingSettings()
    with pytest.raises(AssertionError, match="float64"), NoFloat64():
        latent_difference_masks(s, grey_mask(), latents(0), latents(1))
    with pytest.raises(AssertionError, match="float64"), NoFloat64():
        torch.as_tensor(np.zeros(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sigma", [torch.tensor([14.6, 14.6])[0], 999.0, 0.0], ids=["tensor", "999", "0"])
def test_path_without_float64_never_asks_for_it(monkeypatch, dtype, sigma):
    """Both stages, every latent dtype, python and tensor sigmas: no float64 anywhere, and the
    results stay within SPEC §9 of the float64-accumulating path."""
    s = SoftInpaintingSettings(mask_blend_power=2, inpaint_detail_preservation=32,
                               composite_mask_influence=0.5)
    a, b = latents(0, (2, 4, 24, 20), dtype), latents(1, (2, 4, 24, 20), dtype)
    m = grey_mask((4, 24, 20)).to(dtype)
    kernel, center = get_gaussian_kernel(1.5, 2)
    distance = (b - a).float().norm(dim=1)
    want_masks = latent_difference_masks(s, m, a, b)
    want_filtered = weighted_histogram_filter(distance, kernel, center, 0.25, 0.75, 1.0)
    want_blend = latent_blend(s, a, b, get_modified_nmask(s, m, sigma))
    force_no_float64(monkeypatch)
    with NoFloat64():
        t = get_modified_nmask(s, m, sigma)
        out = latent_blend(s, a, b, t)
        masks = latent_difference_masks(s, m, a, b)
        filtered = weighted_histogram_filter(distance, kernel, center, 0.25, 0.75, 1.0)
    assert t.dtype == dtype and out.dtype == dtype and torch.isfinite(out).all()
    assert torch.equal(out, want_blend)  # stage 1 never used float64 in the first place
    diff = (masks.int() - want_masks.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() <= 0.001
    assert (filtered - want_filtered).abs().max() < 1e-4


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


# ---------------------------------------------------------------- item 2: what each edge means


def shared_mask(shape=(4, 9, 7), seed=5) -> torch.Tensor:
    """A grey mask equal in every channel (as the host makes it), with an exact 0 and an exact 1."""
    m = torch.rand((1, *shape[1:]), generator=torch.Generator().manual_seed(seed)).clamp(0.05, 0.95)
    m[:, 0, 0], m[:, 1, 1] = 0.0, 1.0
    return m.expand(shape).clone()


def close_per_pixel(x: torch.Tensor, y: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    """|x − y| ≤ atol + rtol·|y| for the channel vectors at every latent pixel."""
    err = torch.linalg.vector_norm(x.double() - y.double(), dim=1)
    return bool(torch.all(err <= atol + rtol * torch.linalg.vector_norm(y.double(), dim=1)))


def test_schedule_bias_0_makes_the_schedule_ignore_sigma():
    """sigma ** 0 = 1 for every sigma, also 0 ** 0 at the last step: t = nmask ** strength."""
    s = SoftInpaintingSettings(mask_blend_power=0, mask_blend_scale=0.5)
    m = shared_mask()
    for sigma in (torch.tensor(0.0), torch.tensor(0.03), torch.tensor(14.6), 999.0):
        torch.testing.assert_close(get_modified_nmask(s, m, sigma), m ** 0.5, rtol=0, atol=1e-7)


def test_schedule_bias_8_is_all_or_nothing_away_from_sigma_1():
    """Exponent sigma⁸·strength: ~1e9 at sigma 14.6 (grey keeps the original), ~3e-13 at 0.03 (grey
    takes the new content); 0 and 1 stay 0 and 1, and the blends follow."""
    s = SoftInpaintingSettings(mask_blend_power=8, mask_blend_scale=0.5)
    m = shared_mask()
    grey = (m > 0) & (m < 1)
    a, b = latents(0), latents(1)
    high = get_modified_nmask(s, m, torch.tensor(14.6))
    low = get_modified_nmask(s, m, torch.tensor(0.03))
    assert torch.all(high[grey] == 0) and torch.all(low[grey] == 1)
    assert torch.all(high[m == 0] == 0) and torch.all(low[m == 1] == 1) and torch.all(low[m == 0] == 0)
    keep = (m[0] < 1)[None, None].expand_as(a)
    assert torch.allclose(latent_blend(s, a, b, high)[keep], a[keep], atol=1e-5)
    take = (m[0] > 0)[None, None].expand_as(a)
    assert torch.allclose(latent_blend(s, a, b, low)[take], b[take], atol=1e-5)


def test_preservation_strength_0_regenerates_everything_during_the_steps():
    """Exponent 0: t = nmask ** 0 = 1 everywhere, even where nmask is 0 (torch and upstream agree
    that 0 ** 0 = 1), so each step takes the new content; stage 2 still keeps unchanged pixels."""
    s = SoftInpaintingSettings(mask_blend_scale=0)
    m = shared_mask()
    a, b = latents(0), latents(1)
    for sigma in (torch.tensor(0.0), torch.tensor(14.6)):
        t = get_modified_nmask(s, m, sigma)
        assert torch.all(t == 1)
        assert close_per_pixel(latent_blend(s, a, b, t), b)
    unchanged = latent_difference_masks(s, m, a, a.clone())
    assert torch.all(unchanged == 0)


@pytest.mark.parametrize("magnitude", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("detail", [1.0, 32.0])
def test_contrast_boost_edges_follow_the_float64_formula_at_any_magnitude(detail, magnitude):
    """|x|^32 overflows float32 from |x| ≈ 16 and underflows it below ≈ 0.06; the result must still
    be the float64 power mean (SPEC §9) and lie between the two lengths."""
    s = SoftInpaintingSettings(inpaint_detail_preservation=detail)
    a, b = latents(0) * magnitude, latents(1) * magnitude
    t = grey_mask()
    out = latent_blend(s, a, b, t)
    assert torch.isfinite(out).all()
    assert close_per_pixel(out, torch.from_numpy(oracle_latent_blend(s, a, b, t)), atol=0)
    length = torch.linalg.vector_norm(out, dim=1)
    bounds = torch.stack([torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1)])
    assert torch.all(length <= bounds.max(0).values * (1 + 1e-5))


def test_difference_contrast_0_gives_the_half_mask_everywhere():
    """x ** 0 = 1 (also for 0/0 = NaN): 1 − smootherstep(1/2) = 0.5, truncated to 127, whatever changed."""
    for threshold in (0.0, 0.5, 8.0):
        s = SoftInpaintingSettings(composite_difference_threshold=threshold, composite_difference_contrast=0)
        a = latents(0)
        b = a.clone()
        b[:, :, 5:] += 10
        assert torch.all(latent_difference_masks(s, shared_mask(), a, b) == 127)


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_setting_edges_in_low_precision(edge, dtype):
    s = SoftInpaintingSettings(**edge)
    a, b, m = latents(0, dtype=dtype), latents(1, dtype=dtype), shared_mask().to(dtype)
    for sigma in (torch.tensor(0.0), torch.tensor(14.6), 999.0):
        t = get_modified_nmask(s, m, sigma)
        assert t.dtype == dtype and torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
        out = latent_blend(s, a, b, t)
        want = latent_blend(s, a.float(), b.float(), t.float())
        assert out.dtype == dtype and torch.isfinite(out).all()
        assert close_per_pixel(out, want, rtol=1e-2, atol=1e-2)  # one rounding to the latent's dtype
    assert latent_difference_masks(s, m, a, b).dtype == torch.uint8


# ---------------------------------------------------------------- item 3: tensors


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("power", [1.0, 2.0, 8.0])
def test_modified_mask_in_low_precision(dtype, power):
    """The mask keeps its dtype and equals the float32 computation on the same values (≤ 2 ulp at 1);
    a python sigma whose exponent exceeds float16 (999 ** 2) does not raise."""
    s = SoftInpaintingSettings(mask_blend_power=power)
    m = shared_mask().to(dtype)
    ulp = torch.finfo(dtype).eps
    for sigma in (torch.tensor(0.5), torch.tensor(14.6), 999.0, 0.0):
        got = get_modified_nmask(s, m, sigma)
        want = get_modified_nmask(s, m.float(), sigma)
        assert got.dtype == dtype and torch.isfinite(got).all()
        assert (got.float() - want).abs().max() <= 2 * ulp
    as_tensor = get_modified_nmask(s, m, torch.tensor(999.0))
    assert torch.equal(get_modified_nmask(s, m, 999.0), as_tensor)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_difference_masks_in_low_precision_stay_near_float32(dtype):
    """Rounding the latents to 16 bits moves a few masks by one level, no more."""
    s = SoftInpaintingSettings(composite_mask_influence=0.5)
    gen = torch.Generator().manual_seed(7)
    a = torch.randn((2, 4, 24, 20), generator=gen) * 1.5
    b = a + torch.randn((2, 4, 24, 20), generator=gen) * torch.rand((1, 1, 24, 20), generator=gen)
    m = grey_mask((4, 24, 20))
    want = latent_difference_masks(s, m, a, b)
    got = latent_difference_masks(s, m.to(dtype), a.to(dtype), b.to(dtype))
    diff = (got.int() - want.int()).abs()
    assert got.dtype == torch.uint8 and diff.max() <= 1 and (diff > 0).float().mean() <= 0.01


def test_zero_vectors_in_stage_2():
    """No change anywhere, also where 0/0 arises (threshold 0, or influence 1 under a white mask)."""
    zeros = torch.zeros(2, 4, 6, 5)
    for settings in (dict(), dict(composite_difference_threshold=0),
                     dict(composite_mask_influence=1)):
        s = SoftInpaintingSettings(**settings)
        for m in (torch.ones(4, 6, 5), torch.zeros(4, 6, 5), grey_mask((4, 6, 5))):
            assert torch.all(latent_difference_masks(s, m, zeros, zeros.clone()) == 0)
    t = get_modified_nmask(SoftInpaintingSettings(), torch.zeros(4, 6, 5), torch.tensor(1.0))
    assert torch.all(t == 0)  # 0 ** 0.5: the original is kept
    # At sigma 0 the exponent is 0 ** bias · strength = 0, and 0 ** 0 = 1 (as upstream): take all.
    t = get_modified_nmask(SoftInpaintingSettings(), torch.zeros(4, 6, 5), torch.tensor(0.0))
    assert torch.all(t == 1)


def test_all_zero_and_all_one_masks_in_stage_2():
    """With mask influence 1 the painted mask decides: white (s = 0, threshold 0) shows every
    change and keeps unchanged pixels; black (s ≈ 1e5) keeps the original for any ordinary change."""
    s = SoftInpaintingSettings(composite_mask_influence=1)
    a = latents(0, (1, 4, 12, 12))
    b = a.clone()
    b[:, :, 6:] += 3.0
    white = latent_difference_masks(s, torch.ones(4, 12, 12), a, b)
    assert torch.all(white[0, :3] == 0) and torch.all(white[0, 9:] == 255)
    black = latent_difference_masks(s, torch.zeros(4, 12, 12), a, b)
    assert torch.all(black == 0)
    for m in (torch.zeros(1, 4, 12, 12), torch.ones(1, 4, 12, 12)):  # batched masks too
        assert latent_difference_masks(SoftInpaintingSettings(), m, a, b).shape == (1, 12, 12)


@pytest.mark.parametrize("shape", [(0, 4, 5, 6), (2, 4, 0, 6), (2, 4, 5, 0), (2, 0, 5, 6)])
def test_empty_latents(shape):
    """Empty batches, zero-sized maps and zero channels give empty (or, with no channels, all-kept)
    results of the right shape, not an error from deep inside."""
    s = SoftInpaintingSettings()
    a, b = torch.zeros(shape), torch.ones(shape)
    t = torch.rand(shape[1:])
    assert latent_blend(s, a, b, t).shape == shape
    assert latent_blend(s, a, b, torch.rand((1, *shape[1:]))).shape == shape
    mask = torch.rand((max(shape[1], 1), *shape[2:]))
    masks = latent_difference_masks(s, mask, a, b)
    assert masks.shape == (shape[0], *shape[2:]) and masks.dtype == torch.uint8
    assert torch.all(masks == 0)  # no channels: distance 0 everywhere


def test_negative_zero_settings_behave_as_zero():
    """-0.0 (a JSON client can send it) must not flip a division's sign into a different mask."""
    a, b, m = latents(0), latents(1), shared_mask()
    for name in ("mask_blend_power", "mask_blend_scale", "composite_mask_influence",
                 "composite_difference_threshold", "composite_difference_contrast"):
        neg, pos = SoftInpaintingSettings(**{name: -0.0}), SoftInpaintingSettings(**{name: 0.0})
        for sigma in (torch.tensor(0.0), torch.tensor(3.0)):
            assert torch.equal(latent_blend(neg, a, b, get_modified_nmask(neg, m, sigma)),
                               latent_blend(pos, a, b, get_modified_nmask(pos, m, sigma)))
        assert torch.equal(latent_difference_masks(neg, m, a, b), latent_difference_masks(pos, m, a, b))
