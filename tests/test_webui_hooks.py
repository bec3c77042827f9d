"""The extension inside the WebUI stand-in: hooks in the host's order, and the pictures they make.

Each test starts a fresh host (``webui_harness.start_webui``) and runs img2img inpaint jobs through
the host's ``process_images``, as the WebUI does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_model import GENERATED_COLOUR, FakeModel
from modules import errors, shared
from PIL import Image, ImageFilter
from webui_harness import disc_mask, photo, start_webui

from lib_soft_inpainting import SoftInpaintingSettings, latent_blend, latent_difference_masks
from lib_soft_inpainting.blend import get_modified_nmask

SIZE = (192, 192)
HOLE = (84, 84, 108, 108)
FAR = 64  # beyond this many pixels from the painted mask, no change can reach the picture


@pytest.fixture
def webui():
    return start_webui()


def _job_kwargs(**kwargs):
    base = {"width": SIZE[0], "height": SIZE[1], "mask": disc_mask(SIZE, HOLE)}
    return {**base, **kwargs}


def _run(webui, *values, **kwargs):
    """Run one job with our args ``values`` (default: enabled with default settings)."""
    return webui.run(script_args=webui.args(*(values or (True,))), **_job_kwargs(**kwargs))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def _far_from(mask: Image.Image, distance: int) -> np.ndarray:
    """Pixels farther than ``distance`` (Chebyshev) from any non-zero pixel of ``mask``."""
    grown = mask.convert("L").point(lambda v: 255 if v else 0).filter(ImageFilter.MaxFilter(2 * distance + 1))
    return np.asarray(grown) == 0


class HookLog:
    """Wraps the script's hooks to record the order the host calls them in."""

    def __init__(self, script) -> None:
        self.calls: list[str] = []
        for name in ("process", "on_mask_blend", "post_sample", "postprocess_maskoverlay", "postprocess"):
            original = getattr(script, name)
            setattr(script, name, self._wrap(name, original))

    def _wrap(self, name, original):
        def hook(p, *args):
            if name == "on_mask_blend":
                self.calls.append("final_blend" if args[0].is_final_blend else "on_mask_blend")
            else:
                self.calls.append(name)
            return original(p, *args)

        return hook


# --- order and the host's fields --------------------------------------------------------------------

def test_hooks_run_in_the_host_order_and_mask_rounding_is_off(webui) -> None:
    log = HookLog(webui.script)
    p, processed = _run(webui, batch_size=2, steps=8, denoising_strength=0.75)
    steps = int(0.75 * 8) + 1  # the host samples t_enc + 1 steps of the schedule
    assert log.calls == (["process"] + ["on_mask_blend"] * steps + ["final_blend", "post_sample"]
                         + ["postprocess_maskoverlay"] * 2 + ["postprocess"])
    assert p.mask_round is False
    values = torch.unique(p.nmask)
    assert ((values > 0) & (values < 1)).any(), "the latent mask kept its grey levels"
    assert errors.reported == []
    assert len(processed.images) == 2


def test_per_step_blend_is_the_core_blend_with_the_step_sigma(webui) -> None:
    seen = []
    original = webui.script.on_mask_blend

    def spy(p, mba, *args):
        current, init = mba.current_latent.clone(), mba.init_latent.clone()
        original(p, mba, *args)
        seen.append((mba.is_final_blend, mba.sigma, current, init, mba.nmask, mba.blended_latent))

    webui.script.on_mask_blend = spy
    _run(webui, True, 0.7, 1.5, 6)
    settings = SoftInpaintingSettings(0.7, 1.5, 6)
    for is_final, sigma, current, init, nmask, blended in seen:
        if is_final:
            assert torch.equal(blended, current)  # no hard paste at the end
            continue
        expected = latent_blend(settings, init, current, get_modified_nmask(settings, nmask, sigma[0]))
        torch.testing.assert_close(blended, expected)


def test_pictures_keep_the_original_where_nothing_changed_and_show_new_content_inside(webui) -> None:
    p, processed = _run(webui)
    original, result = _pixels(photo(SIZE)), _pixels(processed.images[0])
    composite_mask = np.asarray(p.soft_inpainting.masks[0])
    unchanged = composite_mask == 0
    assert unchanged.mean() > 0.3
    assert np.array_equal(result[unchanged], original[unchanged]), "mask 0 keeps the original exactly"
    painted = disc_mask(SIZE, HOLE)
    assert np.array_equal(result[_far_from(painted, FAR)], original[_far_from(painted, FAR)])
    big_hole = disc_mask(SIZE, (40, 40, 152, 152))
    p_big, composited = _run(webui, mask=big_hole)
    shared.opts.overlay_inpaint = False
    _, decoded = _run(webui, mask=big_hole)  # the same samples, not composited
    # 254 is the most a mask reaches: 255·(1 − smootherstep(x)) is truncated, as upstream does.
    generated = np.asarray(p_big.soft_inpainting.masks[0]) >= 254
    assert generated[88:104, 88:104].all()
    difference = np.abs(_pixels(composited.images[0])[generated] - _pixels(decoded.images[0])[generated])
    assert difference.max() <= 1, "where the mask is white the new pixels show"
    centre = _pixels(composited.images[0])[88:104, 88:104].reshape(-1, 3).mean(0)
    before = original[88:104, 88:104].reshape(-1, 3).mean(0)
    assert np.abs(centre - before).max() > 20
    towards = np.abs(centre - np.array(GENERATED_COLOUR)) < np.abs(before - np.array(GENERATED_COLOUR))
    assert towards.all(), "the new content moved towards what the model generates"


def test_high_difference_threshold_keeps_original_pixels_where_latents_did_not_change(webui) -> None:
    p_low, low = _run(webui, True, 1, 0.5, 4, 0, 0.25, 2)
    p_high, high = _run(webui, True, 1, 0.5, 4, 0, 8, 2)
    original = _pixels(photo(SIZE))
    kept_low = (_pixels(low.images[0]) == original).all(-1).mean()
    kept_high = (_pixels(high.images[0]) == original).all(-1).mean()
    assert kept_high > kept_low
    masks_low = np.asarray(p_low.soft_inpainting.masks[0]).astype(float)
    masks_high = np.asarray(p_high.soft_inpainting.masks[0]).astype(float)
    assert masks_high.mean() < masks_low.mean(), "a higher threshold shows fewer generated pixels"


def test_post_sample_masks_are_the_core_masks_of_the_sampled_latents(webui) -> None:
    captured = {}
    original = webui.script.post_sample

    def spy(p, ps, *args):
        captured["samples"] = ps.samples.clone()
        original(p, ps, *args)

    webui.script.post_sample = spy
    p, _ = _run(webui, True, 1, 0.5, 4, 0.3, 0.75, 3)
    settings = SoftInpaintingSettings(1, 0.5, 4, 0.3, 0.75, 3)
    masks = latent_difference_masks(settings, p.nmask, p.init_latent, captured["samples"])
    expected = Image.fromarray(masks[0].numpy(), mode="L").resize(SIZE, Image.Resampling.LANCZOS)
    expected = expected.filter(ImageFilter.GaussianBlur(4))
    assert np.abs(np.asarray(expected).astype(int) - np.asarray(p.soft_inpainting.masks[0])).max() <= 1


def test_disabled_or_without_a_mask_the_extension_does_nothing(webui) -> None:
    p_off, off = _run(webui, False)
    assert p_off.mask_round is True
    assert not any(k.startswith("Soft inpainting") for k in p_off.extra_generation_params)
    plain = start_webui()
    plain.runner.alwayson_scripts.clear()
    _, reference = plain.run(script_args=[0], **_job_kwargs())
    assert np.array_equal(_pixels(off.images[0]), _pixels(reference.images[0]))

    p_img2img, _ = _run(webui, True, mask=None)
    assert p_img2img.mask_round is True and p_img2img.soft_inpainting is None
    assert not any(k.startswith("Soft inpainting") for k in p_img2img.extra_generation_params)


# --- per-job state -------------------------------------------------------------------------------------

def test_state_lives_on_the_job_so_jobs_in_a_row_match_fresh_runs(webui) -> None:
    script_attributes = dict(vars(webui.script))
    first = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, batch_size=3)[1]
    second = _run(webui, True, 0.2, 0.05, 1, 0, 1.25, 1.25, batch_size=1)[1]
    assert vars(webui.script) == script_attributes, "nothing of a job is kept on the shared Script"
    fresh_first = _run(start_webui(), True, 1, 0.5, 4, 0, 0.5, 2, batch_size=3)[1]
    fresh_second = _run(start_webui(), True, 0.2, 0.05, 1, 0, 1.25, 1.25, batch_size=1)[1]
    assert len(first.images) == 3 and len(second.images) == 1
    for got, want in zip(first.images + second.images, fresh_first.images + fresh_second.images, strict=True):
        assert np.array_equal(_pixels(got), _pixels(want))


def test_a_job_that_fails_half_way_does_not_leak_into_the_next(webui) -> None:
    class Exploding(FakeModel):
        def denoise(self, x, sigma, image_cond=None):
            if self.calls == 3:
                raise RuntimeError("out of memory, half-way")
            return super().denoise(x, sigma, image_cond)

    with pytest.raises(RuntimeError, match="half-way"):
        _run(webui, True, 1, 2, 4, 0, 0.5, 2, batch_size=4, model=Exploding())
    _, after = _run(webui, True, 0.5, 0.5, 4, 0, 1, 2, batch_size=2)
    _, fresh = _run(start_webui(), True, 0.5, 0.5, 4, 0, 1, 2, batch_size=2)
    for got, want in zip(after.images, fresh.images, strict=True):
        assert np.array_equal(_pixels(got), _pixels(want))


# --- modes ---------------------------------------------------------------------------------------------

def test_batch_with_several_init_images_composites_each_over_its_own_original(webui) -> None:
    originals = [photo(SIZE, seed=1), photo(SIZE, seed=2)]
    p, processed = _run(webui, init_images=originals, batch_size=2)
    assert len(processed.images) == 2
    for i, original in enumerate(originals):
        unchanged = np.asarray(p.soft_inpainting.masks[i]) == 0
        assert np.array_equal(_pixels(processed.images[i])[unchanged], _pixels(original)[unchanged])


def test_n_iter_makes_masks_for_every_batch(webui) -> None:
    batches = []
    original = webui.script.post_sample

    def spy(p, ps, *args):
        original(p, ps, *args)
        batches.append(list(p.soft_inpainting.masks))

    webui.script.post_sample = spy
    _, processed = _run(webui, n_iter=2, batch_size=2)
    assert len(processed.images) == 4 and len(batches) == 2
    assert not np.array_equal(np.asarray(batches[0][0]), np.asarray(batches[1][0])), "seeds differ per batch"


def test_only_masked_with_padding_pastes_back_into_the_full_picture(webui) -> None:
    original = photo((160, 128), seed=3)
    mask = disc_mask((160, 128), (90, 40, 130, 80))
    p, processed = _run(webui, init_images=[original], mask=mask, width=64, height=64,
                        inpaint_full_res=True, inpaint_full_res_padding=8)
    assert p.paste_to is not None
    result = processed.images[0]
    assert result.size == original.size
    composite_mask = np.asarray(p.soft_inpainting.masks[0].convert("L"))
    assert composite_mask.shape == (128, 160)
    x, y, w, h = p.paste_to
    outside = np.ones((128, 160), bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(_pixels(result)[outside], _pixels(original)[outside])
    unchanged = composite_mask == 0
    assert np.array_equal(_pixels(result)[unchanged], _pixels(original)[unchanged])


@pytest.mark.parametrize("resize_mode", [0, 1, 2, 3])
def test_every_resize_mode_works_with_an_init_image_of_another_size(webui, resize_mode) -> None:
    original = photo((96, 80), seed=4)
    mask = disc_mask((96, 80), (30, 20, 66, 60))
    p, processed = _run(webui, init_images=[original], mask=mask, resize_mode=resize_mode)
    assert errors.reported == []
    result = processed.images[0]
    assert result.size == SIZE
    overlay = p.soft_inpainting.overlays[0]
    assert overlay.size == SIZE
    unchanged = np.asarray(p.soft_inpainting.masks[0]) == 0
    assert unchanged.any()
    assert np.array_equal(_pixels(result)[unchanged], _pixels(overlay)[unchanged])


def test_inpainting_models_receive_the_grey_mask(webui) -> None:
    soft_model, hard_model = FakeModel(inpainting=True), FakeModel(inpainting=True)
    _run(webui, True, model=soft_model)
    _run(webui, False, model=hard_model)
    soft_mask, hard_mask = soft_model.seen_conditioning[0], hard_model.seen_conditioning[0]
    assert ((soft_mask > 0.05) & (soft_mask < 0.95)).any()
    assert set(torch.unique(hard_mask).tolist()) <= {0.0, 1.0}


def test_overlay_inpaint_off_means_no_overlay(webui) -> None:
    shared.opts.overlay_inpaint = False
    p, processed = _run(webui)
    assert p.soft_inpainting.masks, "the masks are still made (for the mask outputs)"
    original = _pixels(photo(SIZE))
    far = _far_from(disc_mask(SIZE, HOLE), FAR)
    changed_outside = ~(_pixels(processed.images[0]) == original).all(-1) & far
    assert changed_outside.any(), "without an overlay the decoded picture is shown everywhere"


def test_samples_decoded_by_the_sampler_take_the_static_mask_path(webui) -> None:
    p, processed = _run(webui, True, 1, 0.5, decode_in_sampler=True)
    assert errors.reported == []
    mask_picture = np.asarray(p.soft_inpainting.masks[0])
    nmask = p.nmask[0].clamp(0, 1) ** 0.25
    expected = Image.fromarray((255 * nmask).numpy().astype(np.uint8), mode="L")
    expected = expected.resize(SIZE, Image.Resampling.LANCZOS)
    expected = np.asarray(expected.filter(ImageFilter.GaussianBlur(4))).astype(int)
    assert np.abs(expected - mask_picture).max() <= 1
    unchanged = mask_picture == 0
    assert np.array_equal(_pixels(processed.images[0])[unchanged], _pixels(photo(SIZE))[unchanged])


# --- samplers ------------------------------------------------------------------------------------------

def _mid_schedule_weights(webui, sampler, flag):
    """The soft mask ``t`` at the grey latent pixels, at the middle step of a job."""
    weights = []
    original = webui.script.on_mask_blend

    def spy(p, mba, *args):
        if not mba.is_final_blend:
            state = p.soft_inpainting
            sigma = mba.sigma[0]
            if state.timestep_as_noise_level and getattr(mba.denoiser, "mask_before_denoising", False):
                from lib_soft_inpainting.blend import timestep_to_sigma
                sigma = timestep_to_sigma(sigma, mba.denoiser.alphas)
            t = get_modified_nmask(state.settings, mba.nmask, sigma)
            grey = (mba.nmask > 0.3) & (mba.nmask < 0.7)
            weights.append(t[grey].mean().item())
        original(p, mba, *args)

    webui.script.on_mask_blend = spy
    p, _ = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, flag, sampler_name=sampler, steps=20,
                denoising_strength=0.6)
    return p, weights[len(weights) // 2]


def test_ddim_with_the_noise_level_option_blends_like_euler(webui) -> None:
    p_ddim, ddim = _mid_schedule_weights(webui, "DDIM", True)
    _, euler = _mid_schedule_weights(start_webui(), "Euler", True)
    assert 0.05 < ddim < 0.95 and 0.05 < euler < 0.95, "grey stays grey in the middle of the schedule"
    assert abs(ddim - euler) < 0.25
    assert p_ddim.extra_generation_params.get("Soft inpainting timestep noise level") is True


def test_ddim_without_the_option_uses_the_timestep_as_upstream(webui) -> None:
    p, weight = _mid_schedule_weights(webui, "DDIM", False)
    assert weight < 1e-3, "a timestep raised to the schedule makes the soft mask practically binary"
    assert "Soft inpainting timestep noise level" not in p.extra_generation_params


def test_euler_jobs_never_record_the_timestep_key(webui) -> None:
    p, _ = _run(webui, True, sampler_name="Euler")
    assert "Soft inpainting timestep noise level" not in p.extra_generation_params

