"""Property tests (hypothesis) of the core over the settings ranges of SPEC §2 and many shapes.

Example counts are kept modest and the runs are derandomised so that the suite is fast and
repeatable; a failure prints the falsifying example.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    latent_difference_masks,
    weighted_histogram_filter,
)
from lib_soft_inpainting.settings import SETTINGS, SettingsError, parse_script_args

FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SLOWER = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# The UI ranges of SPEC §2.
powers = st.floats(0.0, 8.0)
scales = st.floats(0.0, 8.0)
details = st.floats(1.0, 32.0)
influences = st.floats(0.0, 1.0)
thresholds = st.floats(0.0, 8.0)
contrasts = st.floats(0.0, 8.0)
seeds = st.integers(0, 2 ** 31 - 1)


@st.composite
def all_settings(draw) -> SoftInpaintingSettings:
    return SoftInpaintingSettings(mask_blend_power=draw(powers), mask_blend_scale=draw(scales),
                                  inpaint_detail_preservation=draw(details),
                                  composite_mask_influence=draw(influences),
                                  composite_difference_threshold=draw(thresholds),
                                  composite_difference_contrast=draw(contrasts))


@st.composite
def latent_shapes(draw) -> tuple[int, int, int, int]:
    """(B, C, H, W) with 1×1, thin and odd latents included."""
    return (draw(st.integers(1, 3)), draw(st.integers(1, 4)),
            draw(st.integers(1, 9)), draw(st.integers(1, 9)))


def random_latents(seed: int, shape, magnitude: float) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen) * magnitude, torch.randn(shape, generator=gen) * magnitude)


def random_mask(seed: int, shape, kind: str) -> torch.Tensor:
    """A mask in [0, 1]: uniform, binary, all zero, all one, or tiny values near 0 and 1."""
    gen = torch.Generator().manual_seed(seed + 1)
    u = torch.rand(shape, generator=gen)
    if kind == "binary":
        return (u > 0.5).float()
    if kind == "zeros":
        return torch.zeros(shape)
    if kind == "ones":
        return torch.ones(shape)
    if kind == "extremes":
        return torch.where(u > 0.5, 1 - u * 1e-6, u * 1e-30)
    return u


mask_kinds = st.sampled_from(["uniform", "binary", "zeros", "ones", "extremes"])
magnitudes = st.sampled_from([1e-3, 0.1, 1.0, 5.0, 100.0])


# ---------------------------------------------------------------- stage 1


@FAST
@given(all_settings(), latent_shapes(), seeds, mask_kinds, magnitudes, st.booleans(),
       st.sampled_from([torch.float32, torch.float64]))
def test_blend_is_finite_and_keeps_shape_and_dtype(s, shape, seed, kind, magnitude, batched, dtype):
    a, b = random_latents(seed, shape, magnitude)
    a, b = a.to(dtype), b.to(dtype)
    nmask = random_mask(seed, shape if batched else shape[1:], kind).to(dtype)
    sigma = torch.tensor([14.6, 1.0, 0.03, 0.0])[seed % 4]
    t = get_modified_nmask(s, nmask, sigma)
    assert t.shape == nmask.shape and t.dtype == dtype
    assert torch.all(torch.isfinite(t)) and torch.all((t >= 0) & (t <= 1))
    out = latent_blend(s, a, b, t)
    assert out.shape == a.shape and out.dtype == dtype
    assert torch.all(torch.isfinite(out))


@FAST
@given(details, latent_shapes(), seeds, magnitudes, st.booleans(), st.sampled_from([0.0, 1.0]))
def test_blend_endpoints_return_original_and_current(detail, shape, seed, magnitude, batched, value):
    a, b = random_latents(seed, shape, magnitude)
    s = SoftInpaintingSettings(1.0, 0.5, detail, 0.0, 0.5, 2.0)
    t = torch.full(shape if batched else shape[1:], value)
    out = latent_blend(s, a, b, t)
    target = a if value == 0.0 else b
    err = torch.linalg.vector_norm(out - target, dim=1)
    # exact up to the 1e-5 that the formula adds to |v| and float32 rounding
    assert torch.all(err <= 1e-5 + 2e-6 * torch.linalg.vector_norm(target, dim=1))


@FAST
@given(powers, scales, seeds, st.floats(0.0, 1000.0))
def test_modified_mask_stays_in_unit_interval_and_never_exceeds_the_mask(power, scale, seed, sigma):
    """The exponent is ≥ 0, so t ∈ [0, 1]; with sigma ≥ 1 (exponent ≥ scale) and scale ≥ 1 it
    can only move grey values toward 0, the original."""
    s = SoftInpaintingSettings(power, scale, 4.0, 0.0, 0.5, 2.0)
    nmask = random_mask(seed, (4, 5, 6), "uniform")
    t = get_modified_nmask(s, nmask, torch.tensor(sigma))
    assert torch.all(torch.isfinite(t)) and torch.all((t >= 0) & (t <= 1))
    if sigma >= 1.0 and scale >= 1.0:
        assert torch.all(t <= nmask + 1e-7)


@FAST
@given(all_settings(), latent_shapes(), seeds, mask_kinds, st.sampled_from([1e-3, 1.0, 5.0, 60.0]),
       st.booleans(), st.sampled_from([torch.float16, torch.bfloat16]),
       st.sampled_from([0.0, 0.03, 1.0, 14.6, 999.0]), st.booleans())
def test_low_precision_blend_is_finite_and_near_float32(s, shape, seed, kind, magnitude, batched, dtype,
                                                        sigma, sigma_as_tensor):
    """16-bit latents and masks: output in their dtype, finite, and within a few rounding steps of
    the float32 computation on the same (already rounded) inputs."""
    a, b = random_latents(seed, shape, magnitude)
    a, b = a.to(dtype), b.to(dtype)
    nmask = random_mask(seed, shape if batched else shape[1:], kind).to(dtype)
    sig = torch.tensor(sigma) if sigma_as_tensor else sigma
    t = get_modified_nmask(s, nmask, sig)
    assert t.dtype == dtype and torch.all(torch.isfinite(t)) and torch.all((t >= 0) & (t <= 1))
    out = latent_blend(s, a, b, t)
    assert out.dtype == dtype and torch.all(torch.isfinite(out))
    want = latent_blend(s, a.float(), b.float(), t.float())
    err = torch.linalg.vector_norm(out.float() - want, dim=1)
    # one rounding of each channel to the dtype: eps/2 relative per channel, a little slack
    limit = 2 * torch.finfo(dtype).eps * torch.linalg.vector_norm(want, dim=1) + 1e-6
    assert torch.all(err <= limit)


@FAST
@given(all_settings(), latent_shapes(), seeds, st.sampled_from([1e-3, 1.0, 100.0]), st.booleans())
def test_blend_never_grows_past_the_longer_input(s, shape, seed, magnitude, batched):
    """The length is a power mean of |a| and |b| (times |v| / (|v| + 1e-5) ≤ 1), so it can never
    exceed the longer of the two: no blow-up at contrast boost 32 or with large latents."""
    a, b = random_latents(seed, shape, magnitude)
    t = random_mask(seed, shape if batched else shape[1:], "uniform")
    out = latent_blend(s, a, b, t)
    longest = torch.maximum(torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1))
    assert torch.all(torch.linalg.vector_norm(out, dim=1) <= longest * (1 + 1e-5) + 1e-30)


# ---------------------------------------------------------------- argument parsing

json_scalars = (st.none() | st.booleans() | st.integers(-10 ** 400, 10 ** 400) | st.floats()
                | st.floats(-1e3, 1e3).map(str) | st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
setting_keys = st.sampled_from([name for spec in SETTINGS for name in (spec.name, spec.snake_label)])
numbers_or_junk = st.one_of(st.floats(), st.integers(-100, 100), st.none(), st.floats(-1e3, 1e3).map(str),
                            json_values)


@st.composite
def api_vectors(draw):
    """What a JSON client can send as ``args``: the documented forms with any values, or anything."""
    form = draw(st.integers(0, 2))
    enabled = draw(st.sampled_from([True, False, "true", "false", None, 1, 0]) | json_scalars)
    if form == 0:
        return [enabled, *draw(st.lists(numbers_or_junk, max_size=9))]
    if form == 1:
        keys = setting_keys | st.text(max_size=8)
        return [enabled, draw(st.dictionaries(keys, numbers_or_junk, max_size=6))]
    return draw(json_values)


@SLOWER
@given(api_vectors())
def test_parsing_accepts_in_range_values_or_raises_settings_error_only(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = parse_script_args(args)
        except SettingsError:
            return
    assert isinstance(parsed.enabled, bool)
    for spec, value in zip(SETTINGS, parsed.settings.values(), strict=True):
        assert type(value) is float and math.isfinite(value) and spec.minimum <= value <= spec.maximum


@FAST
@given(st.sampled_from(SETTINGS), st.floats(allow_nan=False, allow_infinity=False))
def test_finite_values_are_clamped_and_noted_exactly_when_out_of_range(spec, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings_ = SoftInpaintingSettings(**{spec.name: value})
    used = getattr(settings_, spec.name)
    assert used == min(max(value, spec.minimum), spec.maximum)
    assert bool(settings_.adjustments) == (not spec.minimum <= value <= spec.maximum)


# ---------------------------------------------------------------- stage 2


@SLOWER
@given(all_settings(), latent_shapes(), seeds, mask_kinds, magnitudes, st.booleans())
def test_difference_masks_are_uint8_and_shaped(s, shape, seed, kind, magnitude, batched):
    orig, proc = random_latents(seed, shape, magnitude)
    nmask = random_mask(seed, shape if batched else shape[1:], kind)
    out = latent_difference_masks(s, nmask, orig, proc)
    assert out.dtype == torch.uint8
    assert tuple(out.shape) == (shape[0], shape[2], shape[3])


@SLOWER
@given(scales, influences, contrasts, thresholds, thresholds, latent_shapes(), seeds, mask_kinds,
       st.sampled_from([0.05, 0.5, 2.0]), st.booleans())
def test_higher_threshold_never_raises_the_mask(scale, influence, contrast, h1, h2, shape, seed, kind,
                                                 magnitude, batched):
    low, high = sorted((h1, h2))
    orig, proc = random_latents(seed, shape, 1.0)
    proc = orig + (proc - orig) * magnitude
    nmask = random_mask(seed, shape if batched else shape[1:], kind)
    at_low = latent_difference_masks(SoftInpaintingSettings(1.0, scale, 4.0, influence, low, contrast),
                                     nmask, orig, proc)
    at_high = latent_difference_masks(SoftInpaintingSettings(1.0, scale, 4.0, influence, high, contrast),
                                      nmask, orig, proc)
    assert torch.all(at_high <= at_low)


# ---------------------------------------------------------------- the filter


def window_min_max(img: np.ndarray, kernel: np.ndarray, center: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value under each pixel's clipped window (positive-weight taps only)."""
    kh, kw = kernel.shape
    cy, cx = center
    padded = np.pad(img.astype(np.float64), ((cy, kh - 1 - cy), (cx, kw - 1 - cx)), constant_values=np.nan)
    windows = sliding_window_view(padded, (kh, kw))[..., kernel > 0]
    return np.nanmin(windows, axis=-1), np.nanmax(windows, axis=-1)


@st.composite
def filter_cases(draw):
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["normal", "ties", "spiky"]))
    if kind == "normal":
        img = rng.normal(size=(height, width)) * draw(st.sampled_from([1e-3, 1.0, 50.0]))
    elif kind == "ties":
        img = rng.integers(-2, 3, size=(height, width)).astype(np.float64)
    else:
        img = np.where(rng.uniform(size=(height, width)) < 0.1, rng.uniform(1, 10, (height, width)), 0.0)
    if draw(st.booleans()):
        kernel, c = get_gaussian_kernel(draw(st.floats(0.5, 3.0)), draw(st.integers(0, 3)))
        kernel, center = np.asarray(kernel), (int(c), int(c))
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        kernel = rng.uniform(0.0, 2.0, size=(kh, kw))
        kernel[rng.uniform(size=(kh, kw)) < 0.2] = 0.0
        center = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
        kernel[center] = max(kernel[center], 0.1)  # a pixel always sees itself
    p1, p2 = draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))
    min_width = draw(st.floats(1e-3, 10.0))
    return img.astype(np.float32), kernel, center, min(p1, p2), max(p1, p2), min_width


@FAST
@given(filter_cases(), st.sampled_from(["numpy32", "numpy64", "torch32", "torch64", "torch_batch"]))
def test_filter_output_lies_within_its_window(case, kind):
    img, kernel, center, pmin, pmax, min_width = case
    lo, hi = window_min_max(img, kernel, center)
    if kind == "numpy32":
        out = weighted_histogram_filter(img, kernel, center, pmin, pmax, min_width)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
    elif kind == "numpy64":
        img = img.astype(np.float64)
        out = weighted_histogram_filter(img, kernel, center, pmin, pmax, min_width)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
    elif kind == "torch32":
        out = weighted_histogram_filter(torch.from_numpy(img), kernel, center, pmin, pmax, min_width)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    elif kind == "torch64":
        out = weighted_histogram_filter(torch.from_numpy(img).double(), kernel, center, pmin, pmax, min_width)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    else:
        batch = torch.from_numpy(np.stack([img, img[::-1].copy()]))
        out_batch = weighted_histogram_filter(batch, kernel, center, pmin, pmax, min_width)
        assert out_batch.shape == batch.shape and out_batch.dtype == torch.float32
        lo2, hi2 = window_min_max(img[::-1].copy(), kernel, center)
        second = out_batch[1].numpy().astype(np.float64)
        assert np.all(np.isfinite(second)) and np.all((second >= lo2) & (second <= hi2))
        out = out_batch[0]
    out = np.asarray(out.numpy() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
    assert out.shape == img.shape
    assert np.all(np.isfinite(out))
    # float32 results are exact bounds (the float64 mean rounds back onto the float32 values);
    # float64 results keep the last-bit rounding of sum(v·w) / sum(w).
    slack = 1e-12 * np.maximum(np.abs(lo), np.abs(hi)) if out_dtype_is_64(kind) else 0.0
    assert np.all(out >= lo - slack), f"below the window minimum by {np.max(lo - out)}"
    assert np.all(out <= hi + slack), f"above the window maximum by {np.max(out - hi)}"


def out_dtype_is_64(kind: str) -> bool:
    return kind.endswith("64")
