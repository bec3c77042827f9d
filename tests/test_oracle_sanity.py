"""Hand-worked cases that prove the slow oracle itself right, before it judges the core."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from oracle import (
    kernel_weight_sums,
    oracle_gaussian_kernel,
    oracle_get_modified_nmask,
    oracle_latent_blend,
    oracle_latent_difference_masks,
    oracle_smootherstep,
    oracle_smoothstep,
    oracle_weighted_histogram_filter,
)

# A 1×3 kernel with centre (row 0, column 1): weights 1 (left), 2 (centre), 0.5 (right).
ROW_KERNEL = np.array([[1.0, 2.0, 0.5]])
ROW_CENTER = (0, 1)


def settings(**overrides: float) -> SimpleNamespace:
    values = {"mask_blend_power": 1.0, "mask_blend_scale": 0.5, "inpaint_detail_preservation": 4.0,
              "composite_mask_influence": 0.0, "composite_difference_threshold": 0.5,
              "composite_difference_contrast": 2.0}
    values.update(overrides)
    return SimpleNamespace(**values)


# ---------------------------------------------------------------- the kernel


def test_default_kernel_values_by_hand():
    kernel, center = oracle_gaussian_kernel(1.5, 2)
    assert center == 2
    assert kernel.shape == (5, 5)
    g_zero = math.exp(-9 / 2.25)  # g((r+1)^2) with sigma^2 = 2.25, not 2 sigma^2
    assert kernel[2, 2] == pytest.approx(1.0)
    assert kernel[2, 3] == pytest.approx((math.exp(-1 / 2.25) - g_zero) / (1 - g_zero))
    assert kernel[2, 3] == pytest.approx(0.63449, abs=1e-5)
    assert kernel[0, 0] == pytest.approx((math.exp(-8 / 2.25) - g_zero) / (1 - g_zero))
    assert kernel[0, 0] == pytest.approx(0.01044, abs=1e-5)
    np.testing.assert_array_equal(kernel, kernel.T)
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1])


def test_kernel_corners_are_zero_beyond_radius_plus_one():
    # With r = 3 the corners are sqrt(18) > r + 1 = 4 away: clamped to 0.
    kernel, center = oracle_gaussian_kernel(1.0, 3)
    assert center == 3 and kernel.shape == (7, 7)
    assert kernel[0, 0] == 0.0
    assert kernel[3, 0] > 0.0


def test_default_kernel_weight_sums_corner_and_interior():
    kernel, center = oracle_gaussian_kernel(1.5, 2)
    sums = kernel_weight_sums(kernel, center, (9, 9))
    assert sums[0, 0] == pytest.approx(3.17, abs=0.005)
    assert sums[4, 4] == pytest.approx(6.53, abs=0.005)
    assert sums[4, 4] == pytest.approx(kernel.sum())
    # One pixel wide: the centre row of the kernel only, about 1.79 at the ends (< 2).
    row_sums = kernel_weight_sums(kernel, center, (1, 9))
    assert row_sums[0, 0] == pytest.approx(1 + 0.63449 + 0.15351, abs=1e-4)


# ---------------------------------------------------------------- the filter


def test_one_by_one_map_returns_itself():
    kernel, center = oracle_gaussian_kernel(1.5, 2)
    for window in [(0, 1), (0.5, 0.5), (1, 1), (0.9, 1), (0.25, 0.75)]:
        out = oracle_weighted_histogram_filter(np.array([[3.25]]), kernel, center, *window, 1.0)
        assert out[0, 0] == 3.25


def test_zero_width_window_overlaps_nothing_and_gives_zero():
    out = oracle_weighted_histogram_filter(np.array([[3.25, 1.0]]), ROW_KERNEL, ROW_CENTER, 0.5, 0.5, 0.0)
    np.testing.assert_array_equal(out, [[0.0, 0.0]])


def test_full_window_is_weighted_mean_by_hand():
    img = np.array([[4.0, 0.0, 8.0]])
    out = oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.0, 1.0, 1.0)
    # pixel 0: 4 (w 2), 0 (w 0.5); pixel 1: 4 (w 1), 0 (w 2), 8 (w 0.5); pixel 2: 0 (w 1), 8 (w 2)
    np.testing.assert_allclose(out, [[8 / 2.5, 8 / 3.5, 16 / 3]])


def test_full_window_equals_clipped_weighted_mean_everywhere():
    """Independent check of (0, 1) on a random map: zero padding with zero weight is exact."""
    rng = np.random.default_rng(1)
    img = rng.normal(size=(6, 7))
    kernel, center = oracle_gaussian_kernel(1.5, 2)
    padded = np.pad(img, 2)
    present = np.pad(np.ones_like(img), 2)
    num = np.zeros_like(img)
    den = np.zeros_like(img)
    for ky in range(5):
        for kx in range(5):
            num += kernel[ky, kx] * padded[ky:ky + 6, kx:kx + 7]
            den += kernel[ky, kx] * present[ky:ky + 6, kx:kx + 7]
    out = oracle_weighted_histogram_filter(img, kernel, center, 0.0, 1.0, 1.0)
    np.testing.assert_allclose(out, num / den, rtol=1e-12, atol=1e-12)


def test_weighted_median_by_hand():
    img = np.array([[3.0, 1.0, 7.0, 2.0, 5.0]])
    kernel = np.array([[1.0, 3.0, 1.0]])
    out = oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.5, 0.5, 1e-9)
    # pixel 2: 1 [0,1], 2 [1,2], 7 [2,5]; S/2 = 2.5 lies in 7's interval
    assert out[0, 2] == pytest.approx(7.0)
    # pixel 1: 1 [0,3], 3 [3,4], 7 [4,5]; S/2 = 2.5 lies in 1's interval
    assert out[0, 1] == pytest.approx(1.0)
    # Exactly on a boundary: weights 1, 2, 1 at pixel 2 give 1 [0,1], 2 [1,2], 7 [2,4]; S/2 = 2
    # is the edge between 2 and 7, so a tiny centred window takes half of each.
    out = oracle_weighted_histogram_filter(img, np.array([[1.0, 2.0, 1.0]]), (0, 1), 0.5, 0.5, 1e-6)
    assert out[0, 2] == pytest.approx(4.5, abs=1e-6)


def test_weighted_max_and_min_by_hand():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(5, 6))
    kernel, center = oracle_gaussian_kernel(1.5, 2)
    top = oracle_weighted_histogram_filter(img, kernel, center, 1.0, 1.0, 1e-9)
    bottom = oracle_weighted_histogram_filter(img, kernel, center, 0.0, 0.0, 1e-9)
    for y in range(5):
        for x in range(6):
            window = img[max(0, y - 2):y + 3, max(0, x - 2):x + 3]
            assert top[y, x] == pytest.approx(window.max(), abs=1e-12)
            assert bottom[y, x] == pytest.approx(window.min(), abs=1e-12)


def test_widening_upper_clamp_by_hand():
    img = np.array([[4.0, 0.0, 8.0]])
    out = oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.9, 1.0, 1.0)
    # pixel 1: 0 [0,2], 4 [2,3], 8 [3,3.5], S = 3.5. Window [3.15, 3.5] is 0.35 wide, re-centred to
    # [2.825, 3.825], clamped to [2.5, 3.5]: half a unit of 4 and half of 8.
    assert out[0, 1] == pytest.approx(6.0)
    # pixel 0: 0 [0,0.5], 4 [0.5,2.5], S = 2.5 -> [1.5, 2.5], all 4.
    assert out[0, 0] == pytest.approx(4.0)


def test_widening_lower_clamp_by_hand():
    img = np.array([[4.0, 0.0, 8.0]])
    out = oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.0, 0.1, 1.0)
    # pixel 0: 0 [0,0.5], 4 [0.5,2.5]; window [0, 0.25] -> [-0.375, 0.625] -> [0, 1]: half each.
    assert out[0, 0] == pytest.approx(2.0)
    # Without widening (min_width 0) it is the bottom 10 %: all 0.
    assert oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.0, 0.1, 0.0)[0, 0] == 0.0


def test_widening_wider_than_the_stack_takes_everything():
    img = np.array([[4.0, 0.0, 8.0]])
    out = oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.25, 0.75, 10.0)
    np.testing.assert_allclose(out, [[8 / 2.5, 8 / 3.5, 16 / 3]])


def test_interval_mean_not_interpolated_percentile_by_hand():
    img = np.array([[4.0, 0.0, 8.0]])
    out = oracle_weighted_histogram_filter(img, ROW_KERNEL, ROW_CENTER, 0.25, 0.75, 1.0)
    # pixel 1: 0 [0,2], 4 [2,3], 8 [3,3.5]; window [0.875, 2.625]: 1.125 of 0, 0.625 of 4.
    assert out[0, 1] == pytest.approx(2.5 / 1.75)


def test_infinity_outside_the_window_is_skipped():
    img = np.array([[np.inf, 1.0, 2.0, -np.inf]])
    kernel = np.array([[1.0, 1.0, 1.0]])
    out = oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.4, 0.6, 1.0)
    # pixel 1: 1 [0,1], 2 [1,2], inf [2,3]; window [1, 2]: only 2 overlaps (touching is no overlap)
    assert out[0, 1] == 2.0
    # pixel 2: -inf [0,1], 1 [1,2], 2 [2,3] -> 1
    assert out[0, 2] == 1.0
    # pixel 0: 1 [0,1], inf [1,2]; window [0.4, 1.2] reaches inf
    assert out[0, 0] == np.inf


def test_zero_weight_infinity_inside_the_window_is_skipped():
    img = np.array([[1.0, np.inf, 3.0]])
    kernel = np.array([[1.0, 0.0, 1.0]])
    out = oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.0, 1.0, 1.0)
    assert out[0, 1] == 2.0


def test_ties_give_the_same_result_in_any_order():
    img = np.array([[2.0, 2.0, 2.0, 5.0]])
    kernel = np.array([[1.0, 2.0, 3.0]])
    a = oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.3, 0.8, 1.0)
    b = oracle_weighted_histogram_filter(img[:, ::-1].copy(), kernel[:, ::-1].copy(), (0, 1), 0.3, 0.8, 1.0)
    np.testing.assert_allclose(a, b[:, ::-1])


def test_kernel_center_int_equals_pair():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(4, 5))
    kernel = rng.uniform(size=(3, 3))
    np.testing.assert_array_equal(oracle_weighted_histogram_filter(img, kernel, 1, 0.2, 0.9),
                                  oracle_weighted_histogram_filter(img, kernel, np.array([1, 1]), 0.2, 0.9))


def test_asymmetric_centre_shifts_the_window():
    img = np.array([[1.0, 2.0, 3.0, 4.0]])
    kernel = np.array([[1.0, 1.0]])
    # centre column 0: each pixel sees itself and its right neighbour
    out = oracle_weighted_histogram_filter(img, kernel, (0, 0), 0.0, 1.0, 1.0)
    np.testing.assert_allclose(out, [[1.5, 2.5, 3.5, 4.0]])
    # centre column 1: itself and its left neighbour
    out = oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.0, 1.0, 1.0)
    np.testing.assert_allclose(out, [[1.0, 1.5, 2.5, 3.5]])


# ---------------------------------------------------------------- stage 1


def test_modified_nmask_by_hand():
    nmask = np.array([[[0.0, 0.25, 1.0]]])
    out = oracle_get_modified_nmask(settings(mask_blend_power=2.0, mask_blend_scale=0.5), nmask, 2.0)
    np.testing.assert_allclose(out, [[[0.0, 0.25 ** 2.0, 1.0]]])  # exponent 2**2 * 0.5 = 2


@pytest.mark.parametrize("p, expected_len", [(1.0, 7.5), (2.0, math.sqrt(62.5))])
def test_latent_blend_by_hand(p, expected_len):
    a = np.zeros((1, 4, 1, 1))
    b = np.zeros((1, 4, 1, 1))
    a[0, :, 0, 0] = [3, 4, 0, 0]    # |a| = 5
    b[0, :, 0, 0] = [0, 0, 6, 8]    # |b| = 10
    t = np.full((4, 1, 1), 0.5)
    out = oracle_latent_blend(settings(inpaint_detail_preservation=p), a, b, t)
    v = np.array([1.5, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(out[0, :, 0, 0], v * expected_len / (np.linalg.norm(v) + 1e-5))


def test_latent_blend_unbatched_t_equals_the_same_t_repeated_over_the_batch():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(2, 4, 3, 3))
    b = rng.normal(size=(2, 4, 3, 3))
    t = rng.uniform(size=(4, 3, 3))
    np.testing.assert_allclose(oracle_latent_blend(settings(), a, b, t),
                               oracle_latent_blend(settings(), a, b, np.stack([t, t])))


def test_latent_blend_length_uses_only_the_first_channel_of_t():
    a = np.zeros((1, 2, 1, 1))
    b = np.zeros((1, 2, 1, 1))
    a[0, 0] = 2.0
    b[0, 1] = 2.0
    t = np.array([[[[0.5]], [[0.9]]]])  # channel 0 weight 0.5 sets the length; channel 1 the mix
    out = oracle_latent_blend(settings(inpaint_detail_preservation=1.0), a, b, t)
    v = np.array([2.0 * 0.5, 2.0 * 0.9])
    np.testing.assert_allclose(out[0, :, 0, 0], v * 2.0 / (np.linalg.norm(v) + 1e-5))


def test_latent_blend_denormal_t_decides_the_length():
    a = np.zeros((1, 4, 1, 1))
    b = np.zeros((1, 4, 1, 1))
    a[0, 0] = 0.5
    b[0, 1] = 10.0
    t = np.full((4, 1, 1), float(np.float32(1e-40)))
    out = oracle_latent_blend(settings(inpaint_detail_preservation=32.0), a, b, t)
    expected = (0.5 ** 32 + float(np.float32(1e-40)) * 10.0 ** 32) ** (1 / 32)
    assert expected > 0.56  # the tiny t term dominates: |a| alone would give 0.5
    assert np.linalg.norm(out[0, :, 0, 0]) == pytest.approx(expected * 0.5 / (0.5 + 1e-5), rel=1e-9)


# ---------------------------------------------------------------- stage 2


def test_smoothstep_and_smootherstep_by_hand():
    x = np.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(oracle_smoothstep(x), [0.0, 0.15625, 0.5, 1.0])
    np.testing.assert_allclose(oracle_smootherstep(x), [0.0, 0.103515625, 0.5, 1.0])


def test_difference_masks_by_hand_on_a_constant_change():
    # Every latent pixel moves by a vector of length 1: both filters keep the constant map at 1.
    orig = np.zeros((1, 4, 3, 4), dtype=np.float32)
    proc = orig.copy()
    proc[:, 0] = 1.0
    nmask = np.full((4, 3, 4), 0.5, dtype=np.float32)
    s = settings(composite_difference_threshold=2.0, composite_difference_contrast=2.0)
    out = oracle_latent_difference_masks(s, nmask, orig, proc)
    # influence 0: s = 0.5 / 0.50001; h = 2 s ~ 2; x = d / h ~ 0.5; 1 / (1 + 0.25) = 0.8
    h = 2.0 * 0.5 / 0.50001
    x = 1.0 / (1.0 + (1.0 / h) ** 2)
    expected = int(255.0 * (1.0 - (x ** 3 * (x * (6 * x - 15) + 10))))
    assert out.dtype == np.uint8 and out.shape == (1, 3, 4)
    assert np.all(out == expected)
    assert expected == 14  # x = 0.8, smootherstep 0.94208, 255 * 0.05792 = 14.77


def test_difference_masks_zero_over_zero_is_zero_and_positive_over_zero_is_255():
    orig = np.zeros((1, 4, 1, 8), dtype=np.float32)
    proc = orig.copy()
    proc[0, 0, 0, 6:] = 3.0
    nmask = np.ones((4, 1, 8), dtype=np.float32)
    out = oracle_latent_difference_masks(settings(composite_difference_threshold=0.0), nmask, orig, proc)
    assert out[0, 0, 0] == 0      # 0 / 0 -> NaN -> 0, keep the original
    assert out[0, 0, 7] == 255    # d / 0 = inf -> fully regenerated
