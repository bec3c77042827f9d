"""Stage 2 at latent resolution (SPEC §6 steps 1–7): latent_difference_masks against the oracle.

SPEC §9: no pixel differs by more than 1 (of 255) and at most 0.1 % of pixels differ at all.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import oracle_latent_difference_masks, oracle_smootherstep, oracle_smoothstep

from lib_soft_inpainting import SoftInpaintingSettings, latent_difference_masks, smootherstep, smoothstep
from lib_soft_inpainting.composite import latent_distance

MAX_PIXEL_DIFF = 1
MAX_DIFFERING_FRACTION = 0.001


def make_settings(scale: float = 0.5, influence: float = 0.0, threshold: float = 0.5,
                  contrast: float = 2.0) -> SoftInpaintingSettings:
    return SoftInpaintingSettings(mask_blend_power=1.0, mask_blend_scale=scale,
                                  inpaint_detail_preservation=4.0, composite_mask_influence=influence,
                                  composite_difference_threshold=threshold,
                                  composite_difference_contrast=contrast)


def make_case(seed: int, batch: int = 2, height: int = 32, width: int = 36, channels: int = 4
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(nmask [B,C,H,W], original latents, processed latents) shaped like a real inpainting job.

    The mask is 0 on the left, 1 on the right and a ramp between, with a small hole; the sampled
    latents equal the original where the mask is 0, change a lot where it is 1, and a little in
    the ramp, with a few isolated spikes (which the top-unit filter pass spreads).
    """
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.clamp((torch.arange(width, dtype=torch.float32) - width * 0.3) / (width * 0.4), 0, 1)
    mask = ramp.expand(height, width).clone()
    mask[height // 3: height // 3 + 3, width - 8: width - 5] = 0.0
    mask = mask.expand(batch, channels, height, width).clone()
    if batch > 1:
        mask[1:] = mask[1:] ** 0.5  # a different grey ramp per item
    orig = torch.randn((batch, channels, height, width), generator=gen) * 1.2
    change = torch.randn((batch, channels, height, width), generator=gen)
    change = change * (mask * 1.5 + 0.05 * torch.rand((batch, 1, height, width), generator=gen))
    spikes = torch.rand((batch, 1, height, width), generator=gen) < 0.01
    change = change + spikes * torch.randn((batch, channels, height, width), generator=gen) * 3
    change[:, :, :, :5] = 0.0  # a strip that did not change at all (wider than both filter reaches)
    return mask, orig, orig + change


def assert_masks_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    assert isinstance(actual, torch.Tensor)
    assert actual.dtype == torch.uint8
    assert tuple(actual.shape) == expected.shape
    diff = np.abs(actual.cpu().numpy().astype(np.int32) - expected.astype(np.int32))
    allowed = int(MAX_DIFFERING_FRACTION * diff.size)
    assert diff.max() <= MAX_PIXEL_DIFF, f"a pixel differs by {diff.max()}"
    assert np.count_nonzero(diff) <= allowed, f"{np.count_nonzero(diff)} of {diff.size} pixels differ"


SETTINGS_CASES = {
    "default": make_settings(),
    "influence_1": make_settings(scale=2.0, influence=1.0),
    "influence_half": make_settings(scale=1.0, influence=0.5, threshold=1.25),
    "sharp": make_settings(threshold=0.25, contrast=8.0),
    "soft": make_settings(threshold=8.0, contrast=0.25),
    "contrast_0": make_settings(contrast=0.0),
    "threshold_0": make_settings(threshold=0.0),
    "threshold_0_contrast_0": make_settings(threshold=0.0, contrast=0.0),  # NaN ** 0 = 1: all 127
    "scale_0_influence_1": make_settings(scale=0.0, influence=1.0),
    "large_threshold": make_settings(threshold=4.0, contrast=4.0),
}


@pytest.mark.parametrize("name", list(SETTINGS_CASES))
@pytest.mark.parametrize("batched_mask", [False, True], ids=["CHW", "BCHW"])
def test_masks_match_oracle(name, batched_mask):
    settings = SETTINGS_CASES[name]
    nmask, orig, proc = make_case(seed=len(name))
    nmask = nmask if batched_mask else nmask[0]
    out = latent_difference_masks(settings, nmask, orig, proc)
    expected = oracle_latent_difference_masks(settings, nmask, orig, proc)
    assert_masks_close(out, expected)


def test_mask_batch_of_one_serves_every_latent_item():
    settings = make_settings(scale=1.5, influence=0.8)
    nmask, orig, proc = make_case(seed=21, batch=3, height=24, width=28)
    nmask = nmask[:1] ** 3
    out = latent_difference_masks(settings, nmask, orig, proc)
    assert_masks_close(out, oracle_latent_difference_masks(settings, nmask, orig, proc))


def test_unbatched_mask_is_shared_by_every_item():
    settings = make_settings(scale=1.0, influence=1.0)
    nmask, orig, proc = make_case(seed=22, batch=3, height=20, width=20)
    shared = latent_difference_masks(settings, nmask[0], orig, proc)
    repeated = latent_difference_masks(settings, nmask[0].expand(3, -1, -1, -1).clone(), orig, proc)
    assert torch.equal(shared, repeated)


def test_each_item_is_filtered_on_its_own():
    settings = make_settings()
    nmask, orig, proc = make_case(seed=23, batch=3, height=20, width=24)
    together = latent_difference_masks(settings, nmask, orig, proc)
    for i in range(3):
        alone = latent_difference_masks(settings, nmask[i:i + 1], orig[i:i + 1], proc[i:i + 1])
        assert torch.equal(together[i:i + 1], alone)


@pytest.mark.parametrize("height, width", [(1, 1), (1, 9), (9, 1), (2, 5), (7, 5), (13, 11)])
def test_small_and_odd_latents(height, width):
    settings = make_settings(influence=0.5, scale=1.0)
    gen = torch.Generator().manual_seed(height * 31 + width)
    nmask = torch.rand((1, 4, height, width), generator=gen)
    orig = torch.randn((2, 4, height, width), generator=gen)
    proc = orig + torch.randn((2, 4, height, width), generator=gen) * nmask
    out = latent_difference_masks(settings, nmask, orig, proc)
    expected = oracle_latent_difference_masks(settings, nmask, orig, proc)
    # so few pixels that the 0.1 % allowance is 0: require exact agreement but allow the ±1 rule
    diff = np.abs(out.numpy().astype(np.int32) - expected.astype(np.int32))
    assert out.dtype == torch.uint8 and out.shape == (2, height, width)
    assert diff.max() <= MAX_PIXEL_DIFF


def test_unchanged_latents_give_zero_mask_and_big_change_gives_255():
    settings = make_settings()
    nmask, orig, _ = make_case(seed=24, batch=1, height=16, width=16)
    out = latent_difference_masks(settings, nmask, orig, orig.clone())
    assert torch.all(out == 0)
    out = latent_difference_masks(settings, nmask, orig, orig + 50.0)
    assert torch.all(out == 255)


def test_zero_over_zero_is_keep_original():
    """Threshold 0 where nothing changed: 0/0. The core defines it as mask 0 (keep the original)."""
    settings = make_settings(threshold=0.0)
    nmask, orig, proc = make_case(seed=25, batch=1, height=16, width=20)
    out = latent_difference_masks(settings, nmask, orig, proc)
    assert torch.all(out[..., :1] == 0)      # the unchanged strip, far enough from any change
    assert torch.all(out[..., -4:] == 255)   # changed: d / 0 = inf
    assert_masks_close(out, oracle_latent_difference_masks(settings, nmask, orig, proc))


def test_inputs_untouched():
    settings = make_settings(influence=0.5)
    nmask, orig, proc = make_case(seed=26, batch=1, height=12, width=12)
    copies = nmask.clone(), orig.clone(), proc.clone()
    latent_difference_masks(settings, nmask, orig, proc)
    assert torch.equal(nmask, copies[0]) and torch.equal(orig, copies[1]) and torch.equal(proc, copies[2])


# ---------------------------------------------------------------- smoothstep / smootherstep


POINTS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


def test_smoothstep_values():
    x = np.array(POINTS)
    np.testing.assert_allclose(smoothstep(x), oracle_smoothstep(x), atol=1e-15)
    np.testing.assert_allclose(smoothstep(torch.tensor(x)).numpy(), oracle_smoothstep(x), atol=1e-15)
    assert smoothstep(0.25) == pytest.approx(0.15625)
    assert smoothstep(0.5) == pytest.approx(0.5)
    assert smoothstep(0.0) == 0 and smoothstep(1.0) == 1


def test_smootherstep_values():
    x = np.array(POINTS)
    np.testing.assert_allclose(smootherstep(x), oracle_smootherstep(x), atol=1e-15)
    out = smootherstep(torch.tensor(x, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), oracle_smootherstep(x), atol=1e-6)
    assert smootherstep(0.25) == pytest.approx(0.103515625)
    assert smootherstep(0.8) == pytest.approx(0.94208)
    assert smootherstep(0.0) == 0 and smootherstep(1.0) == 1


def test_steps_are_monotone_and_symmetric_on_the_unit_interval():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    for step in (smoothstep, smootherstep):
        y = step(x)
        assert torch.all(y[1:] >= y[:-1])
        torch.testing.assert_close(y + step(1 - x), torch.ones_like(x), rtol=0, atol=1e-12)


# -- what the distance means for 16-channel latents (SD3, Flux, …) -----------------------------------

@pytest.mark.parametrize("channels", [16, 12, 1])
def test_other_channel_counts_match_the_oracle(channels):
    nmask, orig, processed = make_case(seed=7, channels=channels)
    for reference in (4, None):
        ours = latent_difference_masks(make_settings(), nmask, orig, processed, reference_channels=reference)
        expected = oracle_latent_difference_masks(make_settings(), nmask, orig, processed, reference)
        assert_masks_close(ours, expected)


def test_four_channel_distance_is_the_plain_norm_bit_for_bit():
    nmask, orig, processed = make_case(seed=3)
    plain = latent_distance(orig, processed, reference_channels=None)
    assert torch.equal(latent_distance(orig, processed), plain)
    assert torch.equal(plain, (processed - orig).square().sum(1).sqrt())
    plain_masks = latent_difference_masks(make_settings(), nmask, orig, processed, reference_channels=None)
    assert torch.equal(latent_difference_masks(make_settings(), nmask, orig, processed), plain_masks)


def test_the_same_change_per_channel_gives_the_same_mask_at_4_and_16_channels():
    """Each channel of a 16-channel latent changed like each channel of a 4-channel one: the
    defaults see the same change, so the masks agree; the plain norm would double the distance."""
    nmask4, orig4, processed4 = make_case(seed=11, channels=4)
    change = processed4 - orig4
    orig16 = torch.randn(orig4.shape[0], 16, *orig4.shape[2:], generator=torch.Generator().manual_seed(2))
    processed16 = orig16 + change.repeat(1, 4, 1, 1)
    nmask16 = nmask4[:, :1].expand(-1, 16, -1, -1)
    torch.testing.assert_close(latent_distance(orig16, processed16), latent_distance(orig4, processed4),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(latent_distance(orig16, processed16, reference_channels=None),
                               2 * latent_distance(orig4, processed4), rtol=1e-6, atol=1e-6)
    ours16 = latent_difference_masks(make_settings(), nmask16, orig16, processed16)
    ours4 = latent_difference_masks(make_settings(), nmask4, orig4, processed4)
    assert (ours16.int() - ours4.int()).abs().max() <= 1
    plain16 = latent_difference_masks(make_settings(), nmask16, orig16, processed16, reference_channels=None)
    assert (plain16.int() - ours4.int()).abs().max() > 20  # the unscaled distance means something else
