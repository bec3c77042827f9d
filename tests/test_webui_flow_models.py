"""Flow-matching models in the WebUI family (SPEC §5, §14), through the host stand-in.

The models: ``FakeFlowModel`` (16 latent channels, σ in 0–1, sampler input ``(1 − σ)·x₀ + σ·ε``,
``model.model_sampling.noise_scaling`` where A1111 1.10's SD3 model keeps it); on the Forge
family (``forge_main``, ``neo``, ``forge_classic_2025_02``) every model carries
``forge_objects.unet.model.predictor`` instead. Each host drives its own hook order (``on_mask_blend``
after the model, the neutralised input-side blend, or the CFG callbacks).

The oracle of each step's noise level is SPEC §14 in float64: ``σ / (1 − σ)`` with ``1 − σ`` kept at
or above 1e-4; of the blend SPEC §5 (``tests/oracle.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_model import FakeFlowModel, FakeModel, FakeUnknownModel, with_forge_objects
from modules import errors, infotext_utils
from oracle import oracle_get_modified_nmask, oracle_latent_blend
from webui_harness import disc_mask, photo, start_webui

from lib_soft_inpainting import SoftInpaintingSettings, latent_difference_masks
from lib_soft_inpainting.settings import (
    CHANNELS_INFOTEXT_KEY,
    FLOW_INFOTEXT_KEY,
    NOISE_LEVEL_INFOTEXT_KEYS,
    TIMESTEP_INFOTEXT_KEY,
)
from soft_inpainting_webui import noise_levels

SIZE = (96, 96)
HOLE = (24, 24, 72, 72)
HOSTS = ("a1111", "forge_main", "neo", "forge_classic_2025_02")
STEPS, DENOISE = 8, 0.75


def _run(webui, *values, model=None, **kwargs):
    base = {"width": SIZE[0], "height": SIZE[1], "mask": disc_mask(SIZE, HOLE), "mask_blur": 8,
            "steps": STEPS, "denoising_strength": DENOISE, "init_images": [photo(SIZE)]}
    p = webui.job(script_args=webui.args(*(values or (True,))), model=model or FakeFlowModel(),
                  **{**base, **kwargs})
    from modules import processing
    return p, processing.process_images(p)


def _record(webui, monkeypatch):
    """Every soft blend: (the noise level used, init, current, nmask, result)."""
    calls = []
    original = webui.extension._soft_blend

    def spy(state, init_latent, current_latent, nmask, sigma):
        result = original(state, init_latent, current_latent, nmask, sigma)
        calls.append((float(sigma), init_latent.clone(), current_latent.clone(), nmask.clone(),
                      result.clone()))
        return result

    monkeypatch.setattr(webui.extension, "_soft_blend", spy)
    return calls


def _flow_schedule(steps: int = STEPS, denoise: float = DENOISE) -> list[float]:
    """The sampler sigmas of an img2img job (A1111's start index), without the final 0."""
    t_enc = int(min(denoise, 0.999) * steps)
    return FakeFlowModel().get_sigmas(steps)[steps - t_enc - 1:-1].tolist()


def _oracle_noise_level(sigma: float) -> float:
    """SPEC §14: σ / (1 − σ), 1 − σ capped below at 1e-4 (σ as the float32 the sampler passed)."""
    sigma = float(np.float32(sigma))
    return sigma / max(1.0 - sigma, 1e-4)


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


# --- which models are flow models ---------------------------------------------------------------------

@pytest.mark.parametrize(("model", "forge", "is_flow"), [
    (FakeModel(), False, False),  # A1111 SD1: no model sampling at all
    (FakeFlowModel(), False, True),  # A1111 SD3: model.model_sampling
    (FakeModel(), True, False),  # Forge/Neo SD1: an epsilon predictor
    (FakeFlowModel(), True, True),  # Forge/Neo Flux & co.: a "const" predictor
])
def test_the_kind_is_read_from_where_each_host_keeps_the_model_sampling(model, forge, is_flow) -> None:
    if forge:
        model = with_forge_objects(model)
    sampling = noise_levels.find_model_sampling(model)
    assert (sampling is None) is (not forge and not is_flow)
    assert noise_levels.job_noise_level(model).is_flow is is_flow


def test_an_unknown_model_sampling_is_refused_naming_the_model_type() -> None:
    with pytest.raises(noise_levels.UnsupportedModelError, match="FakeUnknownModel"):
        noise_levels.job_noise_level(FakeUnknownModel())


# --- every per-step call uses the noise level --------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_every_step_of_a_flow_job_uses_sigma_over_one_minus_sigma(host, monkeypatch) -> None:
    webui = start_webui(host=host)
    calls = _record(webui, monkeypatch)
    p, _ = _run(webui, True)
    expected = [_oracle_noise_level(s) for s in _flow_schedule()]
    assert [c[0] for c in calls] == pytest.approx(expected, rel=1e-6)
    settings = p.soft_inpainting.settings
    for raw, (_, init, current, nmask, result) in zip(_flow_schedule(), calls, strict=True):
        t = oracle_get_modified_nmask(settings, nmask, _oracle_noise_level(raw))
        want = oracle_latent_blend(settings, init, current, t)
        err = np.linalg.norm(result.numpy() - want, axis=1)
        assert (err <= 1e-5 * np.linalg.norm(want, axis=1) + 1e-6).all()
    assert errors.reported == []
    assert p.extra_generation_params[FLOW_INFOTEXT_KEY] is True


def test_a_short_schedule_starting_at_sigma_one_is_capped_and_holds_the_original(monkeypatch) -> None:
    """A1111 starts a 4-step, 0.75-denoise job at the top of the SD3 schedule: σ = 1 exactly."""
    webui = start_webui()
    calls = _record(webui, monkeypatch)
    p, processed = _run(webui, True, steps=4)
    first_sigma, _, _, nmask, result = calls[0]
    assert _flow_schedule(4)[0] == 1.0 and first_sigma == pytest.approx(1 / 1e-4, rel=1e-3)
    assert torch.isfinite(result).all() and errors.reported == []
    settings = p.soft_inpainting.settings
    t = oracle_get_modified_nmask(settings, nmask, first_sigma)
    grey = (nmask > 0.05) & (nmask < 0.95)
    assert t[grey.numpy()].max() < 1e-6, "grey regions keep the original at pure noise"
    assert np.isfinite(_pixels(processed.images[0])).all()


def test_raw_sigma_would_let_grey_regions_lose_the_original_from_the_first_step(monkeypatch) -> None:
    """What the mapping is for (SPEC §14): at the first step of this job a 0.5-grey pixel keeps
    most of the original at the noise level, little at the raw σ."""
    settings = SoftInpaintingSettings()
    sigma = _flow_schedule()[0]
    keep_raw = 1 - 0.5 ** (sigma * settings.mask_blend_scale)
    keep_mapped = 1 - 0.5 ** (_oracle_noise_level(sigma) * settings.mask_blend_scale)
    assert keep_raw < 0.4 < 0.9 < keep_mapped


# --- the conversion off: the upstream built-in's result ----------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_with_the_conversion_off_each_step_gets_the_raw_sigma_and_no_key(host, monkeypatch) -> None:
    webui = start_webui(host=host)
    calls = _record(webui, monkeypatch)
    _p, processed = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, False)
    assert [c[0] for c in calls] == pytest.approx(_flow_schedule(), rel=1e-6)
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    assert not set(NOISE_LEVEL_INFOTEXT_KEYS) & set(params)


def _composite_inputs(webui, monkeypatch):
    """The latents each job's composite was made from, and its masks."""
    seen = []
    original = webui.extension.pictures.adaptive_composite

    def spy(settings, nmask, latent_orig, latent_processed, *args, **kwargs):
        result = original(settings, nmask, latent_orig, latent_processed, *args, **kwargs)
        seen.append((settings, nmask.clone(), latent_orig.clone(), latent_processed.clone(), result))
        return result

    monkeypatch.setattr(webui.extension.pictures, "adaptive_composite", spy)
    return seen


@pytest.mark.parametrize("convert", [True, False])
def test_sixteen_channel_composite_measures_the_change_per_channel_only_with_the_conversion(
        convert, monkeypatch) -> None:
    webui = start_webui()
    seen = _composite_inputs(webui, monkeypatch)
    _p, processed = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, convert)
    settings, nmask, orig, done, result = seen[0]
    assert done.shape[1] == 16
    plain = latent_difference_masks(settings, nmask, orig, done, reference_channels=None)
    per_channel = latent_difference_masks(settings, nmask, orig, done, reference_channels=4)
    assert not torch.equal(plain, per_channel)
    got = latent_difference_masks(settings, nmask, orig, done, reference_channels=4 if convert else None)
    assert torch.equal(got, per_channel if convert else plain)
    expected = (per_channel if convert else plain)[0].numpy()
    # The mask picture of the job is the latent mask made to pixels: it follows the same one.
    small = np.asarray(result.masks[0].resize(expected.shape[::-1]))
    assert np.corrcoef(small.ravel().astype(float), expected.ravel().astype(float))[0, 1] > 0.9
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    assert (params.get(CHANNELS_INFOTEXT_KEY) == "True") is convert


def test_the_same_change_per_channel_gives_the_same_mask_for_4_and_16_channels() -> None:
    """Difference threshold means a per-channel change: 16 channels that each moved by δ give the
    mask 4 channels that each moved by δ give (SPEC §14)."""
    settings = SoftInpaintingSettings()
    nmask = torch.ones(4, 12, 12)
    delta = torch.linspace(0, 1.5, 12)[None, None, :, None].expand(1, 1, 12, 12)
    masks = []
    for channels in (4, 16):
        orig = torch.zeros(1, channels, 12, 12)
        masks.append(latent_difference_masks(settings, nmask, orig, orig + delta, reference_channels=4))
    assert torch.equal(masks[0], masks[1])


# --- SD1 unchanged ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("sampler", ["Euler", "DDIM"])
def test_sd1_jobs_are_bit_identical_with_the_flow_mapping_in_place(host, sampler, monkeypatch) -> None:
    """SD models never take the flow branch: every step's sigma is what the conversion gave before
    (the raw sigma for Euler, the timestep's noise level for A1111's DDIM), pictures alike."""
    if sampler == "DDIM" and host != "a1111":
        pytest.skip("the stand-in's timestep sampler is A1111's")
    webui = start_webui(host=host)
    calls = _record(webui, monkeypatch)
    p, processed = _run(webui, True, model=FakeModel(), sampler_name=sampler)
    assert p.soft_inpainting.noise_level.is_flow is False
    monkeypatch.setattr(noise_levels, "job_noise_level", lambda model: noise_levels.SIGMA_IS_NOISE_LEVEL)
    before = len(calls)
    _p_old, old = _run(webui, True, model=FakeModel(), sampler_name=sampler)
    assert [c[0] for c in calls[:before]] == [c[0] for c in calls[before:]]
    assert np.array_equal(_pixels(processed.images[0]), _pixels(old.images[0]))
    assert FLOW_INFOTEXT_KEY not in p.extra_generation_params
    assert CHANNELS_INFOTEXT_KEY not in p.extra_generation_params
    assert (TIMESTEP_INFOTEXT_KEY in p.extra_generation_params) is (sampler == "DDIM" and host == "a1111")


def test_sd1_pictures_are_the_same_with_the_conversion_on_or_off() -> None:
    webui = start_webui()
    _, on = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, True, model=FakeModel())
    _, off = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, False, model=FakeModel())
    assert np.array_equal(_pixels(on.images[0]), _pixels(off.images[0]))
    assert on.infotexts[0] == off.infotexts[0], "nothing changed, so nothing is recorded"


# --- infotext and paste-back ---------------------------------------------------------------------------

def _ours(webui):
    return webui.runner.inputs[webui.script.args_from:webui.script.args_to]


def _paste(webui, text):
    params = infotext_utils.parse_generation_parameters(text)
    fields = [(c, f) for c, f in webui.runner.infotext_fields if c in _ours(webui)]
    return [u.get("value", "<unchanged>") for u in infotext_utils.paste(fields, params)]


@pytest.mark.parametrize("convert", [True, False])
def test_pasting_a_flow_infotext_back_reproduces_the_picture(convert) -> None:
    webui = start_webui()
    _, first = _run(webui, True, 1.5, 0.75, 6, 0.25, 1.25, 3, convert)
    values = _paste(webui, first.infotexts[0])
    assert values[7] is convert
    _, again = _run(webui, *values)
    assert np.array_equal(_pixels(first.images[0]), _pixels(again.images[0]))
    assert again.infotexts[0] == first.infotexts[0]


def test_an_old_flow_infotext_pastes_back_with_the_conversion_off_and_reproduces_the_raw_sigma_picture(
        monkeypatch) -> None:
    """Made before the flow mapping existed (raw σ, plain distance, no key): pasted back, the
    conversion is off and the picture is the old one."""
    webui = start_webui()
    monkeypatch.setattr(noise_levels, "job_noise_level", lambda model: noise_levels.SIGMA_IS_NOISE_LEVEL)
    monkeypatch.setattr(noise_levels, "distance_reference_channels", lambda convert: None)
    _, old = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, True)
    old_text = old.infotexts[0]
    assert FLOW_INFOTEXT_KEY not in old_text and CHANNELS_INFOTEXT_KEY not in old_text
    monkeypatch.undo()
    values = _paste(webui, old_text)
    assert values[7] is False
    _, again = _run(webui, *values)
    assert np.array_equal(_pixels(old.images[0]), _pixels(again.images[0]))


@pytest.mark.parametrize(("keys", "expected"), [
    ({}, False), ({TIMESTEP_INFOTEXT_KEY: "True"}, True), ({FLOW_INFOTEXT_KEY: "True"}, True),
    ({CHANNELS_INFOTEXT_KEY: "True"}, True), ({FLOW_INFOTEXT_KEY: "False"}, False),
])
def test_the_conversion_is_pasted_on_when_any_of_its_keys_says_so(keys, expected) -> None:
    webui = start_webui()
    text = "Steps: 8, Soft inpainting enabled: True, " + ", ".join(f"{k}: {v}" for k, v in keys.items())
    assert _paste(webui, text.rstrip(", "))[7] is expected


# --- API: the eighth item's old forms ----------------------------------------------------------------------

@pytest.mark.parametrize(("eighth", "option", "flow"), [
    ([True], False, True), ([False], True, False), ([None], True, True), ([None], False, False),
    ([], True, True), (["true"], False, True),
])
def test_the_eighth_api_item_switches_the_mapping(eighth, option, flow, monkeypatch) -> None:
    webui = start_webui(options={"soft_inpainting_timestep_as_noise_level": option})
    calls = _record(webui, monkeypatch)
    args = webui.api_args({"soft inpainting": {"args": [True, 1, 0.5, 4, 0, 0.5, 2, *eighth]}})
    _run_args(webui, args)
    sigmas = _flow_schedule()
    expected = [_oracle_noise_level(s) for s in sigmas] if flow else sigmas
    assert [c[0] for c in calls] == pytest.approx(expected, rel=1e-6)


def test_the_named_form_keeps_its_old_name(monkeypatch) -> None:
    webui = start_webui()
    calls = _record(webui, monkeypatch)
    args = webui.api_args({"soft inpainting": {"args": [True, {"timestep_as_noise_level": False}]}})
    _run_args(webui, args)
    assert [c[0] for c in calls] == pytest.approx(_flow_schedule(), rel=1e-6)


def _run_args(webui, script_args):
    from modules import processing
    p = webui.job(script_args=script_args, model=FakeFlowModel(), width=SIZE[0], height=SIZE[1],
                  mask=disc_mask(SIZE, HOLE), mask_blur=8, steps=STEPS, denoising_strength=DENOISE)
    return p, processing.process_images(p)


# --- an unknown parameterisation -------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["a1111", "neo"])
def test_an_unknown_model_is_refused_for_the_job_with_one_console_line(host, capsys, monkeypatch) -> None:
    webui = start_webui(host=host)
    capsys.readouterr()
    calls = _record(webui, monkeypatch)
    p, processed = _run(webui, True, model=FakeUnknownModel())
    lines = [line for line in capsys.readouterr().out.splitlines() if "Soft Inpainting" in line]
    assert len(lines) == 1 and "FakeUnknownModel" in lines[0] and "off for this job" in lines[0]
    assert calls == [] and p.soft_inpainting is None and p.mask_round is True
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    assert "FakeUnknownModel" in params["Soft inpainting error"]
    assert errors.reported == []
    # With the conversion off the sampler's sigma is used as is, as the built-in does: no refusal.
    p, _ = _run(webui, True, 1, 0.5, 4, 0, 0.5, 2, False, model=FakeUnknownModel())
    assert p.soft_inpainting is not None and calls


# --- X/Y/Z ------------------------------------------------------------------------------------------------

def test_the_conversion_has_an_axis(monkeypatch) -> None:
    webui = start_webui()
    p = webui.job(script_args=webui.args(True), model=FakeFlowModel(), width=SIZE[0], height=SIZE[1],
                  mask=disc_mask(SIZE, HOLE), mask_blur=8, steps=STEPS)
    cells = webui.xyz.Script().run_axis(p, "[Soft inpainting] Noise level conversion", ["True", "False"])
    keys = [infotext_utils.parse_generation_parameters(c.infotexts[0]).get(FLOW_INFOTEXT_KEY) for c in cells]
    assert keys == ["True", None]
    assert not np.array_equal(_pixels(cells[0].images[0]), _pixels(cells[1].images[0]))


# --- Forge main / Neo: one noise in grey regions, also for flow models --------------------------------

@pytest.mark.parametrize("host", ["forge_main", "neo"])
def test_grey_regions_of_a_flow_job_are_fed_one_noise(host) -> None:
    """The model's first input in the grey ring is ``(1 − σ)·init + σ·ε`` with one ε of unit std:
    the host's input-side blend (two independent noises) is neutralised."""
    webui = start_webui(host=host)
    p, _ = _run(webui, True, batch_size=4)
    x, sigma = p.sampler.denoiser.seen_inputs[0]
    s = sigma[:, None, None, None]
    noise = (x - (1 - s) * p.init_latent) / s
    nmask = p.nmask.reshape(p.nmask.shape[-3:])
    ring = (nmask > 0.35) & (nmask < 0.65)
    values = noise[:, ring]
    assert values.numel() > 500 and 0.93 < float(values.std()) < 1.07


# --- Neo's video-VAE models: picture latents [B, 16, 1, h, w] --------------------------------------

def test_neo_blends_and_composites_five_dimensional_latents_frame_by_frame(monkeypatch) -> None:
    """Qwen-Image, Anima and Wan keep a picture as one frame; the blend and the composite are the
    4-D ones of that frame, and the original stays where the mask is 0."""
    webui = start_webui(host="neo")
    calls = _record(webui, monkeypatch)
    size = (192, 192)
    p, processed = _run(webui, True, model=FakeFlowModel(frames=True), batch_size=2, width=size[0],
                        height=size[1], mask=disc_mask(size, (64, 64, 128, 128)), mask_blur=4,
                        init_images=[photo(size)])
    assert p.init_latent.dim() == 5 and p.nmask.shape[:3] == (1, 16, 1)
    assert errors.reported == []
    expected = [_oracle_noise_level(s) for s in _flow_schedule()]
    assert [c[0] for c in calls] == pytest.approx(expected, rel=1e-6)
    settings = p.soft_inpainting.settings
    for raw, (_, init, current, nmask, result) in zip(_flow_schedule(), calls, strict=True):
        assert result.shape == current.shape and result.dim() == 5
        t = oracle_get_modified_nmask(settings, nmask[:, :, 0], _oracle_noise_level(raw))
        want = oracle_latent_blend(settings, init[:, :, 0], current[:, :, 0], t)
        err = np.linalg.norm(result[:, :, 0].numpy() - want, axis=1)
        assert (err <= 1e-5 * np.linalg.norm(want, axis=1) + 1e-6).all()
    assert len(p.soft_inpainting.masks) == 2
    original = _pixels(photo(size))
    for image, mask in zip(processed.images, p.soft_inpainting.masks, strict=True):
        kept = np.asarray(mask) == 0
        assert kept.mean() > 0.1 and np.array_equal(_pixels(image)[kept], original[kept])


def test_folded_frames_round_trip() -> None:
    from soft_inpainting_webui.latent_shapes import fold_frames, unfold_frames

    for shape in ((2, 16, 1, 5, 6), (2, 16, 3, 5, 6), (2, 4, 5, 6), (16, 5, 6)):
        x = torch.randn(shape)
        folded = fold_frames(x)
        assert folded.dim() == min(x.dim(), 4) and torch.equal(unfold_frames(folded, like=x), x)
    x = torch.randn(2, 4, 3, 5, 6)
    assert torch.equal(fold_frames(x)[1], x[0, :, 1]), "frame 1 of item 0 is batch item 1"
