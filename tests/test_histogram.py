"""The vectorised weighted histogram filter and its kernel against the slow oracle (SPEC §6–§7, §9)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from oracle import oracle_gaussian_kernel, oracle_weighted_histogram_filter

from lib_soft_inpainting import get_gaussian_kernel, weighted_histogram_filter

FILTER_ATOL = 1e-5  # SPEC §9, float32 maps

DEFAULT_KERNEL, DEFAULT_CENTER = oracle_gaussian_kernel(1.5, 2)

WINDOWS = [(0.0, 1.0), (0.5, 0.5), (1.0, 1.0), (0.9, 1.0), (0.25, 0.75), (0.0, 0.0), (0.3, 0.31)]
MIN_WIDTHS = [0.0, 0.5, 1.0, 2.0, 10.0]


def _random(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(1.0, 1.5, size=(9, 11))


def _ties(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 3, size=(8, 9)).astype(np.float64)


def _constant_regions(rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((10, 12))
    img[:, 6:] = 2.5
    img[3:7, 2:9] = rng.normal(size=(4, 7))
    img[8:, :4] = -1.0
    return img


def _one_by_one(rng: np.random.Generator) -> np.ndarray:
    return np.array([[rng.normal()]])


def _one_by_n(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(1, 13))


def _n_by_one(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(11, 1))


def _two_by_n(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(2, 7))


def _odd(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 4.0, size=(7, 5))


def _all_zero(rng: np.random.Generator) -> np.ndarray:
    return np.zeros((6, 7))


def _sparse_spikes(rng: np.random.Generator) -> np.ndarray:
    """Mostly zero with a few large changes, like a latent distance map of a small edit."""
    img = np.zeros((12, 10))
    img[rng.integers(0, 12, 6), rng.integers(0, 10, 6)] = rng.uniform(1.0, 6.0, 6)
    return img


MAPS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "random": _random,
    "ties": _ties,
    "constant_regions": _constant_regions,
    "1x1": _one_by_one,
    "1xN": _one_by_n,
    "Nx1": _n_by_one,
    "2xN": _two_by_n,
    "odd": _odd,
    "all_zero": _all_zero,
    "sparse_spikes": _sparse_spikes,
}


def make_map(name: str, seed: int = 0) -> np.ndarray:
    return MAPS[name](np.random.default_rng(seed)).astype(np.float32)


def assert_filter_close(actual, expected, atol: float = FILTER_ATOL) -> None:
    """Max abs error ≤ atol; ±inf and NaN must sit where the oracle has them."""
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().cpu().to(torch.float64).numpy()
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=0, atol=atol,
                               equal_nan=True)


# ---------------------------------------------------------------- kernel


@pytest.mark.parametrize("stddev, radius", [(1.5, 2), (1.0, 2), (1.0, 1), (2.0, 3), (0.7, 0), (3.0, 4)])
def test_gaussian_kernel_matches_oracle(stddev, radius):
    kernel, center = get_gaussian_kernel(stddev_radius=stddev, max_radius=radius)
    expected, expected_center = oracle_gaussian_kernel(stddev, radius)
    assert int(np.asarray(center)) == expected_center == radius
    kernel = np.asarray(kernel)
    assert kernel.shape == (2 * radius + 1, 2 * radius + 1)
    np.testing.assert_allclose(kernel, expected, rtol=0, atol=1e-12)


def test_gaussian_kernel_defaults_and_known_values():
    kernel, center = get_gaussian_kernel()
    expected, _ = oracle_gaussian_kernel(1.0, 2)
    np.testing.assert_allclose(np.asarray(kernel), expected, atol=1e-12)
    assert int(np.asarray(center)) == 2
    kernel, _ = get_gaussian_kernel(1.5, 2)
    assert np.asarray(kernel).sum() == pytest.approx(6.528, abs=1e-3)
    assert np.asarray(kernel)[2, 3] == pytest.approx(0.63449, abs=1e-5)


# ---------------------------------------------------------------- against the oracle, default kernel


@pytest.mark.parametrize("min_width", MIN_WIDTHS)
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w[0]}-{w[1]}")
@pytest.mark.parametrize("map_name", list(MAPS))
def test_filter_matches_oracle(map_name, window, min_width):
    img = make_map(map_name, seed=len(map_name))
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, DEFAULT_CENTER, window[0], window[1], min_width)
    expected = oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, DEFAULT_CENTER, window[0], window[1],
                                                min_width)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert_filter_close(out, expected)


def test_filter_default_arguments_are_mean_window_min_width_one():
    img = make_map("random", seed=5)
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, DEFAULT_CENTER)
    expected = oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, DEFAULT_CENTER, 0.0, 1.0, 1.0)
    assert_filter_close(out, expected)


@pytest.mark.parametrize("seed", range(6))
def test_filter_pipeline_passes_match_oracle_on_random_sizes(seed):
    """The two passes of SPEC §6 step 5 on maps of random size, the second fed the first's output."""
    rng = np.random.default_rng(100 + seed)
    h, w = rng.integers(1, 14, size=2)
    img = (rng.uniform(size=(h, w)) ** 3 * 5).astype(np.float32)
    first = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    assert_filter_close(first, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0))
    second = weighted_histogram_filter(first, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    assert_filter_close(second, oracle_weighted_histogram_filter(first, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0))


def test_first_pass_is_not_the_top_ten_percent():
    """(0.9, 1) with min_width 1 is the mean of the top unit of weight, clearly unlike the top 10 %."""
    img = make_map("random", seed=7)
    widened = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    narrow = oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 0.0)
    assert np.max(np.abs(widened - narrow)) > 0.05
    assert_filter_close(widened, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0))


def test_borders_are_clipped_not_padded():
    """A constant map stays constant everywhere only when out-of-image neighbours do not exist."""
    img = np.full((6, 8), 3.0, dtype=np.float32)
    for window in WINDOWS[:5]:
        out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, *window, 1.0)
        np.testing.assert_allclose(out, 3.0, atol=FILTER_ATOL)


# ---------------------------------------------------------------- infinities


@pytest.mark.parametrize("min_width", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w[0]}-{w[1]}")
def test_filter_with_infinities_matches_oracle(window, min_width):
    rng = np.random.default_rng(11)
    img = rng.normal(size=(9, 10)).astype(np.float32)
    img[1, 1] = np.inf
    img[7, 8] = -np.inf
    img[4, 0] = np.inf
    img[0, 9] = -np.inf
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, *window, min_width)
    expected = oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, *window, min_width)
    assert_filter_close(out, expected)


def test_infinity_outside_every_window_never_makes_nan():
    """A median/interquartile window never reaches a lone ±inf: no NaN, no inf anywhere."""
    rng = np.random.default_rng(12)
    img = rng.normal(size=(8, 8)).astype(np.float32)
    img[3, 4] = np.inf
    img[6, 1] = -np.inf
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    assert np.all(np.isfinite(out))
    assert_filter_close(out, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0))
    top = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    assert top[3, 4] == np.inf and not np.any(np.isnan(top))


def test_zero_weight_infinity_inside_the_window_is_skipped():
    img = np.array([[1.0, np.inf, 3.0], [2.0, 2.0, 2.0]], dtype=np.float32)
    kernel = np.array([[1.0, 0.0, 1.0]])
    out = weighted_histogram_filter(img, kernel, (0, 1), 0.0, 1.0, 1.0)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, (0, 1), 0.0, 1.0, 1.0))
    assert out[0, 1] == 2.0


# ---------------------------------------------------------------- types, dtypes, batches


def test_numpy_in_numpy_out_and_input_untouched():
    img = make_map("random", seed=1)
    before = img.copy()
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(img, before)
    assert not np.shares_memory(out, img)


def test_numpy_float64_in_float64_out():
    """float64 maps keep their dtype; SPEC §9 bounds the error only for float32 maps, and the core
    orders and averages values at float32 precision, so hold float64 to the same bound."""
    img = make_map("random", seed=2).astype(np.float64) + 1e-9
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.3, 0.31, 0.0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == img.shape
    assert_filter_close(out, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.3, 0.31, 0.0))


@pytest.mark.parametrize("dtype, atol", [(torch.float32, FILTER_ATOL), (torch.float64, FILTER_ATOL),
                                         (torch.float16, 5e-3), (torch.bfloat16, 4e-2)])
def test_torch_in_torch_out_same_dtype(dtype, atol):
    img = torch.from_numpy(make_map("random", seed=3)).to(dtype)
    before = img.clone()
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and out.shape == img.shape and out.device == img.device
    assert torch.equal(img, before)
    # the oracle sees the same (already rounded) input values; the output is rounded to dtype
    expected = oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert_filter_close(out, expected, atol=atol * scale)


def test_torch_batch_filters_each_map():
    maps = np.stack([make_map("random", seed=s) for s in range(3)] + [make_map("constant_regions")[:9, :11]])
    batch = torch.from_numpy(maps)
    out = weighted_histogram_filter(batch, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    assert isinstance(out, torch.Tensor) and out.shape == batch.shape and out.dtype == torch.float32
    for i in range(maps.shape[0]):
        expected = oracle_weighted_histogram_filter(maps[i], DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
        assert_filter_close(out[i], expected)
        single = weighted_histogram_filter(batch[i], DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
        assert single.shape == batch[i].shape
        torch.testing.assert_close(out[i], single, rtol=0, atol=1e-6)


def test_torch_batch_of_one_by_one_maps():
    batch = torch.tensor([[[1.5]], [[-2.0]]])
    out = weighted_histogram_filter(batch, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    torch.testing.assert_close(out, batch)


def test_torch_kernel_is_accepted():
    img = torch.from_numpy(make_map("odd"))
    out = weighted_histogram_filter(img, torch.from_numpy(DEFAULT_KERNEL), 2, 0.25, 0.75, 1.0)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0))


# ---------------------------------------------------------------- other kernels and centres


@pytest.mark.parametrize("stddev, radius", [(1.0, 1), (2.0, 3), (0.7, 0), (1.0, 2)])
@pytest.mark.parametrize("window", [(0.0, 1.0), (0.9, 1.0), (0.25, 0.75), (0.5, 0.5)], ids=str)
def test_other_gaussian_kernels(stddev, radius, window):
    kernel, center = get_gaussian_kernel(stddev, radius)
    img = make_map("random", seed=radius)
    out = weighted_histogram_filter(img, kernel, center, *window, 1.0)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, center, *window, 1.0))


ASYMMETRIC_CASES = [
    ((3, 5), (1, 3)),
    ((2, 2), (0, 0)),
    ((4, 3), (3, 2)),
    ((1, 4), (0, 1)),
    ((5, 1), (4, 0)),
    ((3, 3), (0, 2)),
]


@pytest.mark.parametrize("min_width", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("window", [(0.0, 1.0), (0.9, 1.0), (0.25, 0.75), (0.5, 0.5), (1.0, 1.0)], ids=str)
@pytest.mark.parametrize("shape, center", ASYMMETRIC_CASES, ids=str)
def test_random_asymmetric_kernels(shape, center, window, min_width):
    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    kernel = rng.uniform(0.05, 1.5, size=shape)
    kernel[rng.uniform(size=shape) < 0.2] = 0.0  # some zero taps
    kernel[center] = max(kernel[center], 0.3)
    img = rng.normal(size=(7, 8)).astype(np.float32)
    out = weighted_histogram_filter(img, kernel, center, *window, min_width)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, center, *window, min_width))


@pytest.mark.parametrize("center", [2, (2, 2), [2, 2], np.array([2, 2]), np.int64(2)],
                         ids=["int", "tuple", "list", "array", "np_int"])
def test_kernel_center_forms_agree(center):
    img = make_map("random", seed=9)
    out = weighted_histogram_filter(img, DEFAULT_KERNEL, center, 0.9, 1.0, 1.0)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0))


def test_kernel_center_pair_is_row_then_column():
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    kernel = np.ones((3, 1))  # a vertical kernel: centre (2, 0) means "this pixel and the two above"
    out = weighted_histogram_filter(img, kernel, (2, 0), 0.0, 1.0, 1.0)
    np.testing.assert_allclose(out[2], (img[0] + img[1] + img[2]) / 3, atol=FILTER_ATOL)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, (2, 0), 0.0, 1.0, 1.0))


# ---------------------------------------------------------------- kernels of every size


@pytest.mark.parametrize("taps", [*range(1, 34), 49, 64, 65, 81, 128, 200, 255])
def test_every_kernel_size_sorts_correctly(taps):
    """Row kernels of 1…255 taps: each neighbour count must be ordered correctly, ties included."""
    rng = np.random.default_rng(taps)
    kernel = rng.uniform(0.1, 1.0, size=(1, taps))
    center = (0, taps // 2)
    img = rng.integers(-3, 4, size=(2, taps + 3)).astype(np.float32) * 0.5
    img[1] = rng.normal(size=taps + 3)
    for window, min_width in [((0.5, 0.5), 0.25), ((0.9, 1.0), 1.0), ((0.0, 0.2), 0.0)]:
        out = weighted_histogram_filter(img, kernel, center, *window, min_width)
        assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, center, *window, min_width))


@pytest.mark.parametrize("stddev, radius", [(3.0, 4), (4.0, 7)])
def test_large_gaussian_kernels(stddev, radius):
    kernel, center = get_gaussian_kernel(stddev, radius)
    img = make_map("random", seed=radius)
    for window in [(0.9, 1.0), (0.25, 0.75)]:
        out = weighted_histogram_filter(img, kernel, center, *window, 1.0)
        assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, center, *window, 1.0))


def test_kernel_with_more_than_255_taps():
    """Upstream accepts any kernel; so must the core (other extensions call it)."""
    kernel, center = get_gaussian_kernel(3.0, 10)  # 373 non-zero taps
    img = make_map("odd", seed=1)
    out = weighted_histogram_filter(img, kernel, center, 0.25, 0.75, 1.0)
    assert_filter_close(out, oracle_weighted_histogram_filter(img, kernel, center, 0.25, 0.75, 1.0))


# ---------------------------------------------------------------- the filter's own shortcuts


def test_non_finite_kernels_are_refused():
    img = make_map("random", seed=1)
    for bad in (np.inf, np.nan):
        kernel = DEFAULT_KERNEL.copy()
        kernel[0, 0] = bad
        with pytest.raises(ValueError, match="kernel's weights must be finite"):
            weighted_histogram_filter(img, kernel, 2, 0.25, 0.75, 1.0)


@pytest.mark.parametrize("window", [(float("nan"), 1.0, 1.0), (0.0, float("inf"), 1.0),
                                    (0.2, 0.8, float("nan"))])
def test_non_finite_windows_are_refused(window):
    with pytest.raises(ValueError, match="percentile_min, percentile_max and min_width must be finite"):
        weighted_histogram_filter(make_map("random", seed=1), DEFAULT_KERNEL, 2, *window)


def _brute_force_totals(weights: np.ndarray, center: tuple[int, int], h: int, w: int) -> set[int]:
    """Every pixel's in-image weight sum, pixel by pixel."""
    kh, kw = weights.shape
    totals = set()
    for y in range(h):
        for x in range(w):
            total = 0
            for ty in range(kh):
                for tx in range(kw):
                    if 0 <= y + ty - center[0] < h and 0 <= x + tx - center[1] < w:
                        total += int(weights[ty, tx])
            totals.add(total)
    return totals


@pytest.mark.parametrize("seed", range(12))
def test_clipped_weight_totals_are_every_pixels_total(seed):
    """The host's list of totals S (one per border class) is exactly the set of per-pixel sums."""
    from lib_soft_inpainting import histogram

    rng = np.random.default_rng(seed)
    kh, kw = rng.integers(1, 7, size=2)
    weights = rng.integers(0, 1000, size=(kh, kw))
    center = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    h, w = (int(v) for v in rng.integers(1, 12, size=2))
    assert set(histogram._clipped_weight_totals(weights, center, h, w)) == _brute_force_totals(
        weights, center, h, w)


def test_the_default_passes_take_the_uniform_window_shortcuts():
    """With the default kernel every window of the first pass is widened and none of the second
    (SPEC §7 facts), so latent_difference_masks never selects per pixel."""
    from lib_soft_inpainting import histogram

    quantized, units = histogram._quantized_weights(DEFAULT_KERNEL.reshape(-1))
    totals = histogram._clipped_weight_totals(quantized.reshape(5, 5), (2, 2), 128, 128)
    assert histogram._narrowness(totals, 0.9, 1.0, units) is True
    assert histogram._narrowness(totals, 0.25, 0.75, units) is False
    assert histogram._narrowness(totals, 0.25, 0.75, 2.0 * units) is None  # widened only near borders


@pytest.mark.parametrize("window, min_width", [((0.9, 1.0), 1.0), ((0.25, 0.75), 1.0), ((0.25, 0.75), 2.0),
                                               ((0.5, 0.5), 0.0), ((0.0, 1.0), 10.0)])
def test_shortcuts_give_the_general_paths_result(monkeypatch, window, min_width):
    """Uniform windows, non-negative keys without the sign flip, and finite values without the
    inf masking are shortcuts: forcing the general paths must not change a single bit."""
    from lib_soft_inpainting import histogram

    maps = torch.from_numpy(np.stack([make_map("odd", seed=s) for s in range(3)]))  # values >= 0
    maps[1, 2:4, 1:3] = 0.0
    fast = weighted_histogram_filter(maps, DEFAULT_KERNEL, 2, *window, min_width)
    monkeypatch.setattr(histogram, "_narrowness", lambda *args: None)
    monkeypatch.setattr(histogram, "_value_flags", lambda maps: (False, False))
    histogram._plan.cache_clear()  # plans are cached per kernel, size and window
    try:
        general = weighted_histogram_filter(maps, DEFAULT_KERNEL, 2, *window, min_width)
    finally:
        histogram._plan.cache_clear()
    assert torch.equal(fast, general)
    for i in range(3):
        assert_filter_close(fast[i], oracle_weighted_histogram_filter(maps[i].numpy(), DEFAULT_KERNEL, 2,
                                                                      *window, min_width))


def test_value_flags_see_negatives_infinities_and_nan():
    from lib_soft_inpainting import histogram

    assert histogram._value_flags(torch.tensor([[0.0, 2.0]])) == (True, True)
    assert histogram._value_flags(torch.tensor([[-0.0, 2.0]])) == (True, True)
    assert histogram._value_flags(torch.tensor([[-1e-30, 2.0]])) == (False, True)
    assert histogram._value_flags(torch.tensor([[0.0, float("inf")]])) == (True, False)
    assert histogram._value_flags(torch.tensor([[1.0, float("nan")]])) == (False, False)


def test_negative_zero_and_positive_values_keep_their_order():
    """-0.0 takes the shortcut (it is >= 0) and must still sort as zero."""
    img = np.array([[-0.0, 0.5, 0.0], [2.0, -0.0, 1.0]], dtype=np.float32)
    for window in [(0.0, 0.3), (0.9, 1.0), (0.25, 0.75)]:
        out = weighted_histogram_filter(img, DEFAULT_KERNEL, 2, *window, 0.5)
        assert_filter_close(out, oracle_weighted_histogram_filter(img, DEFAULT_KERNEL, 2, *window, 0.5))


# ---------------------------------------------------------------- the kept workspace


def _dirty(workspace) -> None:
    """Fill every buffer of a workspace with garbage (all bits set: NaN floats, -1 keys)."""
    for buffer in vars(workspace).values():
        if isinstance(buffer, torch.Tensor):
            buffer.view(torch.uint8).fill_(0xFF)


def test_a_dirty_kept_workspace_gives_the_fresh_result():
    """The CPU workspace outlives the call; a later, smaller call uses part of it and must not see
    what was left there (here: garbage written into every byte)."""
    from lib_soft_inpainting import histogram

    histogram.release_workspace()
    small = torch.from_numpy(make_map("random", seed=4))
    small[0, :3] = float("inf")
    fresh = weighted_histogram_filter(small, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    histogram.release_workspace()
    weighted_histogram_filter(torch.rand(3, 40, 50), DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    kept = histogram._kept_workspace
    assert kept is not None and kept.elements >= 26 * 3 * 40 * 50
    _dirty(kept)
    reused = weighted_histogram_filter(small, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)
    assert histogram._kept_workspace is kept  # it was reused, not replaced
    assert torch.equal(fresh, reused)


def test_a_kept_workspace_too_small_is_replaced():
    from lib_soft_inpainting import histogram

    histogram.release_workspace()
    weighted_histogram_filter(torch.rand(8, 8), DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    small = histogram._kept_workspace
    weighted_histogram_filter(torch.rand(30, 30), DEFAULT_KERNEL, 2, 0.9, 1.0, 1.0)
    assert histogram._kept_workspace is not small and histogram._kept_workspace.elements >= 26 * 900
    histogram.release_workspace()
    assert histogram._kept_workspace is None


def test_concurrent_calls_each_get_their_own_buffers():
    """Threads (API requests) filtering at once: the one holding the kept workspace and the
    others with their own buffers all get exactly the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    maps = [torch.from_numpy(make_map(name, seed=s)) * (s + 1) for s in range(4)
            for name in ("random", "ties", "odd")]
    want = [weighted_histogram_filter(m, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0) for m in maps]
    def work(m: torch.Tensor) -> torch.Tensor:
        return weighted_histogram_filter(m, DEFAULT_KERNEL, 2, 0.25, 0.75, 1.0)

    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            got = list(pool.map(work, maps))
            assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
