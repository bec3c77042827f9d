"""The ComfyUI node pack inside the ComfyUI stand-in (``tests/comfy_host``, v0.3.64 and v0.3.40):
registration, the per-step hook in ``KSamplerX0Inpaint``'s order, parity with the WebUI path, the
composite, and the edge behaviours the README lists."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from comfy_harness import (
    ROOT,
    karras,
    ksample,
    load_pack,
    model_sampling,
    run_node,
    samplers,
    sd_model,
    validate,
)
from webui_harness import disc_mask, start_webui

from lib_soft_inpainting import SoftInpaintingSettings, get_modified_nmask, latent_blend
from lib_soft_inpainting.settings import SETTINGS, SPECS_BY_NAME
from lib_soft_inpainting.ui import PRESETS
from soft_inpainting_comfy import patch
from soft_inpainting_comfy.specs import CUSTOM_PRESET

SIZE = (96, 96)
HOLE = (30, 30, 66, 66)
STEPS, DENOISE = 8, 0.75


@pytest.fixture(params=["0.3.64", "0.3.40"])
def pack(request):
    return load_pack(request.param)


def _settings(pack, **values):
    """The Settings node with ``values`` by python name (its inputs are the snake_case labels)."""
    inputs = {s.snake_label: s.default for s in SETTINGS}
    inputs.update({SPECS_BY_NAME[name].snake_label: value for name, value in values.items()})
    return run_node(pack["SoftInpaintingSettings"], preset=CUSTOM_PRESET, **inputs)[0]


def _patched(pack, model=None, **values):
    model = model or sd_model()
    return run_node(pack["SoftInpaintingApply"], model=model, settings=_settings(pack, **values))[0]


def _grey_latent(batch=1, size=12, scale=0.18215, seed=0):
    gen = torch.Generator().manual_seed(seed)
    samples = torch.randn(batch, 4, size, size, generator=gen) / scale
    y, x = torch.meshgrid(torch.arange(size * 8), torch.arange(size * 8), indexing="ij")
    r = ((x - size * 4) ** 2 + (y - size * 4) ** 2).float().sqrt()
    mask = ((size * 2.5 - r) / (size * 1.5)).clamp(0, 1)  # grey rim
    return {"samples": samples, "noise_mask": mask.reshape(1, 1, size * 8, size * 8)}


def _noise(latent, seed=3):
    return torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(seed))


# --- registration ------------------------------------------------------------------------------


def test_v3_on_current_host_and_v1_before_v3_from_one_table():
    v3 = load_pack("0.3.64")
    assert all(hasattr(cls, "define_schema") for cls in v3.values())
    v3_types = {k: cls.INPUT_TYPES() for k, cls in v3.items()}
    v1 = load_pack("0.3.40")
    assert not any(hasattr(cls, "define_schema") for cls in v1.values())
    assert set(v1) == set(v3) == {"SoftInpaintingSettings", "SoftInpaintingApply", "SoftInpaintingComposite"}
    assert {k: cls.INPUT_TYPES() for k, cls in v1.items()} == v3_types
    required = v3_types["SoftInpaintingSettings"]["required"]
    for spec in SETTINGS:
        kind, options = required[spec.snake_label]
        assert kind == "FLOAT"
        assert options == {
            "default": spec.default,
            "min": spec.minimum,
            "max": spec.maximum,
            "step": spec.step,
            "tooltip": spec.help,
            "display_name": spec.label,
        }
    assert required["preset"][0] == [CUSTOM_PRESET, *PRESETS]
    assert "mask" in v3_types["SoftInpaintingComposite"]["optional"]


def test_root_init_imports_no_comfyui_outside_it():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('pack', {str(ROOT / '__init__.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['pack'] = m; spec.loader.exec_module(m)\n"
        "import lib_soft_inpainting.cli\n"
        "hosts = ('comfy', 'comfy_api', 'nodes', 'folder_paths')\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in hosts]\n"
        "assert not bad, bad\n"
        "assert sorted(m.NODE_CLASS_MAPPINGS) and not hasattr(m, 'comfy_entrypoint')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "docs")


# --- settings: presets and the API's values ------------------------------------------------------


def test_presets_and_out_of_range_values_clamp_with_a_note(pack, caplog):
    cls = pack["SoftInpaintingSettings"]
    seamless = run_node(cls, preset="Seamless blend", **{s.snake_label: s.default for s in SETTINGS})[0]
    assert seamless == PRESETS["Seamless blend"]
    inputs = {
        "preset": CUSTOM_PRESET,
        **{s.snake_label: s.default for s in SETTINGS},
        "preservation_strength": 12,
        "difference_threshold": "-1",
    }
    assert validate(cls, inputs) == []  # the node's own check replaces ComfyUI's min/max refusal
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        settings = run_node(cls, **inputs)[0]
    assert settings.mask_blend_scale == 8 and settings.composite_difference_threshold == 0
    assert "Preservation strength 12 clamped to 8 (range 0 to 8)" in caplog.text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "-Infinity"])
def test_non_finite_values_are_refused_before_the_prompt_runs(pack, value):
    inputs = {"preset": CUSTOM_PRESET, **{s.snake_label: s.default for s in SETTINGS}, "schedule_bias": value}
    errors = validate(pack["SoftInpaintingSettings"], inputs)
    assert len(errors) == 1
    assert "Schedule bias (schedule_bias) must be a finite number from 0 to 8" in errors[0]


def test_a_linked_non_finite_value_is_refused_when_the_node_runs(pack):
    """A value from another node's output skips prompt validation; the node itself refuses it."""
    inputs = {
        "preset": CUSTOM_PRESET,
        **{s.snake_label: s.default for s in SETTINGS},
        "difference_threshold": float("inf"),
    }
    with pytest.raises(ValueError, match=r"Difference threshold \(difference_threshold\) must be a finite"):
        run_node(pack["SoftInpaintingSettings"], **inputs)


def test_non_numbers_and_unknown_presets_are_refused(pack):
    cls = pack["SoftInpaintingSettings"]
    errors = validate(
        cls,
        {"preset": CUSTOM_PRESET, **{s.snake_label: s.default for s in SETTINGS}, "schedule_bias": "lots"},
    )
    assert errors and "schedule_bias" in errors[0]
    errors = validate(cls, {"preset": "Best", **{s.snake_label: s.default for s in SETTINGS}})
    assert errors and "unknown preset 'Best'" in errors[0]


# --- the per-step hook ---------------------------------------------------------------------------


def _record_steps(model):
    """Wrap the model so every call records (x, sigma); returns the list."""
    calls = []
    inner = model.model
    original = inner.denoise_fn

    def fn(x, sigma):
        calls.append((x.clone(), sigma.clone()))
        return original(x, sigma)

    inner.denoise_fn = fn
    return calls


def test_each_step_is_the_soft_blend_and_neither_hard_blend_happens(pack):
    settings = SoftInpaintingSettings(1.5, 0.8, 4, 0, 0.5, 2)
    model = sd_model(scale_factor=0.5)
    patched = _patched(pack, model, **settings.as_dict())
    latent = _grey_latent(batch=2, scale=0.5)
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    calls = _record_steps(model)
    out = ksample(patched, latent, sigmas, noise)["samples"]
    # Oracle: Euler where the prediction is replaced by the soft blend; no input-side blend.
    orig = latent["samples"] * 0.5
    nmask = torch.nn.functional.interpolate(latent["noise_mask"], size=(12, 12), mode="bilinear").expand(
        2, 4, -1, -1
    )
    x = noise * sigmas[0] + orig
    fake = model.model.fake
    for i in range(len(sigmas) - 1):
        torch.testing.assert_close(calls[i][0], x, rtol=0, atol=1e-6)
        t = get_modified_nmask(settings, nmask, sigmas[i])
        denoised = latent_blend(settings, orig, fake.denoise(x, sigmas[i] * torch.ones(2)), t)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    torch.testing.assert_close(out, x / 0.5, rtol=0, atol=1e-5)


def test_latents_after_every_step_equal_the_webui_path(pack):
    """Same original latent, noise, sigmas and model: the WebUI hook order (``on_mask_blend`` after the
    model, Euler) and ComfyUI's (``KSamplerX0Inpaint`` with the patch) give the same latents."""
    webui = start_webui(with_xyz=False)
    args = webui.args(True, 1.5, 0.8, 4, 0.2, 0.5, 2)
    blended = []
    script = webui.script
    hook = script.on_mask_blend

    def on_mask_blend(p, mba, *a):
        hook(p, mba, *a)
        if not mba.is_final_blend:
            blended.append(mba.blended_latent.clone())

    script.on_mask_blend = on_mask_blend
    samples = []
    post_sample = script.post_sample

    def record_samples(p, ps, *a):
        samples.append(ps.samples.clone())
        return post_sample(p, ps, *a)

    script.post_sample = record_samples
    p, _ = webui.run(
        script_args=args,
        width=SIZE[0],
        height=SIZE[1],
        mask=disc_mask(SIZE, HOLE),
        batch_size=2,
        steps=STEPS,
        denoising_strength=DENOISE,
        mask_blur=8,
    )
    assert ((p.nmask > 0) & (p.nmask < 1)).any()
    # the same inputs, through ComfyUI (LATENTs hold unscaled latents; this model scales by 0.5)
    model = sd_model(scale_factor=0.5)
    calls = _record_steps(model)
    patched = _patched(pack, model, **SoftInpaintingSettings(1.5, 0.8, 4, 0.2, 0.5, 2).as_dict())
    noise = torch.stack(
        [
            torch.randn(p.init_latent.shape[1:], generator=torch.Generator().manual_seed(p.seed + i))
            for i in range(2)
        ]
    )
    latent = {"samples": p.init_latent / 0.5, "noise_mask": p.nmask[:1]}
    sigmas = karras(STEPS, DENOISE)
    comfy_blended = []

    def on_step(i, denoised, x, total):
        comfy_blended.append(denoised.clone())

    out = ksample(patched, latent, sigmas, noise, callback=on_step)["samples"] * 0.5
    assert len(comfy_blended) == len(blended) == len(sigmas) - 1
    for ours, theirs in zip(comfy_blended, blended, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, samples[0], rtol=1e-5, atol=1e-5)  # after the WebUI's final blend
    assert len(calls) == len(sigmas) - 1


def test_without_a_noise_mask_the_patched_model_samples_as_the_plain_one(pack):
    latent = {"samples": _grey_latent()["samples"]}
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    plain = ksample(sd_model(), latent, sigmas, noise)["samples"]
    patched = ksample(_patched(pack), latent, sigmas, noise)["samples"]
    assert torch.equal(plain, patched)


def test_two_jobs_in_a_row_on_one_patched_model_leave_nothing_behind(pack):
    patched = _patched(pack)
    a, b = _grey_latent(seed=0), _grey_latent(batch=3, seed=5)
    b["noise_mask"] = b["noise_mask"].flip(-1) * 0.7
    sigmas = karras(STEPS, DENOISE)
    ksample(patched, a, sigmas, _noise(a))
    ksample(patched, {"samples": a["samples"]}, sigmas, _noise(a))
    second = ksample(patched, b, sigmas, _noise(b))["samples"]
    fresh = ksample(_patched(pack), b, sigmas, _noise(b))["samples"]
    assert torch.equal(second, fresh)
    assert "sampler_post_cfg_function" not in patched.model_options
    assert patch.RUN_KEY not in patched.model_options


def test_the_soft_result_differs_from_comfyuis_hard_blend_only_where_the_mask_is_grey(pack):
    latent = _grey_latent()
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    hard = ksample(sd_model(), latent, sigmas, noise)["samples"]
    soft = ksample(_patched(pack), latent, sigmas, noise)["samples"]
    m = torch.nn.functional.interpolate(latent["noise_mask"], size=(12, 12), mode="bilinear")[0, 0]
    diff = (hard - soft).abs().amax(1)[0]
    assert diff[m == 0].max() < 2e-4 and diff[(m > 0.2) & (m < 0.8)].min() > 1e-3


class SkipsCFGFunctions(samplers.CFGGuider):
    """A guider that predicts without ``cfg_function``, so post-CFG functions never run."""

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        cond = samplers.calc_cond_batch(
            self.inner_model, [self.conds["positive"]], x, timestep, model_options
        )
        return cond[0]


def test_a_guider_that_skips_cfg_functions_is_blended_or_refused_clearly(caplog):
    latent = _grey_latent()
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    pack = load_pack("0.3.64")
    normal = ksample(_patched(pack), latent, sigmas, noise)["samples"]
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        skipping = ksample(_patched(pack), latent, sigmas, noise, guider_cls=SkipsCFGFunctions)["samples"]
    torch.testing.assert_close(skipping, normal, rtol=0, atol=1e-6)
    assert "SkipsCFGFunctions skips ComfyUI's post-CFG functions" in caplog.text
    pack = load_pack("0.3.40")  # no predict_noise wrappers: the first step's callback refuses
    with pytest.raises(patch.SoftInpaintingError, match="the guider SkipsCFGFunctions did not call"):
        ksample(_patched(pack), latent, sigmas, noise, guider_cls=SkipsCFGFunctions)


def test_flow_models_use_the_equivalent_noise_level(pack, caplog):
    model = sd_model(flow=True)
    settings = SoftInpaintingSettings(1.0, 0.5, 4, 0, 0.5, 2)
    seen = []
    latent = _grey_latent()
    original = patch.Run.blend

    def blend(self, denoised, sigma):
        seen.append((sigma.reshape(-1)[0].item(), self.noise_level(sigma.reshape(-1)[0]).item()))
        return original(self, denoised, sigma)

    sigmas = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0])
    with caplog.at_level(logging.INFO, "soft_inpainting"):
        patch.Run.blend = blend
        try:
            ksample(_patched(pack, model, **settings.as_dict()), latent, sigmas, _noise(latent))
        finally:
            patch.Run.blend = original
    assert "ModelSamplingFlux is a flow-matching model" in caplog.text
    assert [round(level, 4) for _, level in seen] == [1e4, 3.0, 1.0, round(0.25 / 0.75, 4)]


def test_an_unknown_noise_schedule_is_refused_naming_the_model_type():
    class Strange:
        def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
            return noise * sigma * 2 + latent_image * 3

    with pytest.raises(patch.SoftInpaintingError, match="does not support Strange models"):
        patch.model_noise_level(Strange())
    with pytest.raises(patch.SoftInpaintingError, match="cannot read the noise schedule of object models"):
        patch.model_noise_level(object())
    assert patch.model_noise_level(model_sampling.EPS()).is_flow is False


def test_differential_diffusion_on_the_same_model_is_replaced(pack, caplog):
    latent = _grey_latent()
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    calls = []

    def threshold(sigma, denoise_mask, extra_options):
        calls.append(sigma)
        return (denoise_mask >= 0.5).to(denoise_mask.dtype)

    before = sd_model()
    before.set_model_denoise_mask_function(threshold)
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        with_dd = ksample(_patched(pack, before), latent, sigmas, noise)["samples"]
    after = _patched(pack)
    after.set_model_denoise_mask_function(threshold)
    dd_after = ksample(after, latent, sigmas, noise)["samples"]
    plain = ksample(_patched(pack), latent, sigmas, noise)["samples"]
    assert torch.equal(with_dd, plain) and torch.equal(dd_after, plain) and not calls
    assert "soft inpainting replaces it" in caplog.text


def test_a_binary_mask_gets_a_console_warning(pack, caplog):
    latent = _grey_latent()
    latent["noise_mask"] = latent["noise_mask"].round()  # what VAEEncodeForInpaint hands on
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        ksample(_patched(pack), latent, karras(STEPS, DENOISE), _noise(latent))
    assert "VAEEncodeForInpaint rounds its mask" in caplog.text


def _warned_binary(pack, caplog, noise_mask) -> bool:
    latent = {**_grey_latent(), "noise_mask": noise_mask}
    caplog.clear()
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        ksample(_patched(pack), latent, karras(STEPS, DENOISE), _noise(latent))
    return "the noise mask is binary" in caplog.text


def test_only_a_mask_of_zeros_and_ones_is_called_binary(pack, caplog):
    size = 12 * 8
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    square = ((x >= 20) & (x < 68) & (y >= 12) & (y < 60)).float()  # resized: ½ and ¼ at its edges
    resized = torch.nn.functional.interpolate(square[None, None], size=(12, 12), mode="bilinear")
    assert {0.25, 0.5} <= set(resized.unique().tolist())
    assert _warned_binary(pack, caplog, square.reshape(1, 1, size, size))
    assert _warned_binary(pack, caplog, torch.zeros(1, 1, size, size))
    band = torch.where(x < 30, 0.0, torch.where(x < 60, 0.5, 1.0))  # a wide grey band between 0 and 1
    solid = torch.full((1, 1, size, size), 0.5)  # SolidMask 0.5
    for grey in (solid, band.reshape(1, 1, size, size), _grey_latent()["noise_mask"]):
        assert not _warned_binary(pack, caplog, grey)


def test_the_binary_check_sees_through_comfyuis_resize():
    """At latent size a 0/1 edge inside a latent pixel is ¼, ½ or ¾ (bilinear, 8×): still binary;
    a grey level away from an edge, or any other level, is not."""
    pixels = torch.zeros(1, 1, 64, 64)
    pixels[..., 4:36, 12:52] = 1
    pixels[..., 4:20, 12:60] = 1  # a concave corner, too
    latent_mask = torch.nn.functional.interpolate(pixels, size=(8, 8), mode="bilinear")
    assert {0.25, 0.5, 0.75} <= set(latent_mask.unique().tolist())
    assert patch._is_binary(latent_mask.repeat(1, 4, 1, 1))
    assert patch._is_binary(pixels) and patch._is_binary(torch.ones(2, 4, 8, 8))
    assert not patch._is_binary(torch.full((1, 4, 8, 8), 0.5))
    band = torch.zeros(1, 1, 8, 8)
    band[..., 2:5] = 0.5  # three grey columns: the middle one is no edge's
    band[..., 5:] = 1
    assert not patch._is_binary(band)
    band[..., 3] = 0
    assert patch._is_binary(band)
    odd = latent_mask.clone()
    odd[odd == 0.5] = 0.4
    assert not patch._is_binary(odd)


def test_inpainting_models_still_get_the_grey_concat_mask(pack):
    latent = _grey_latent(batch=2)
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    plain, patched_model = sd_model(inpainting=True), sd_model(inpainting=True)
    ksample(plain, latent, sigmas, noise)
    ksample(_patched(pack, patched_model), latent, sigmas, noise)
    (mask,), (ours,) = plain.model.concat_masks, patched_model.model.concat_masks
    assert torch.equal(mask, ours) and ((ours > 0) & (ours < 1)).any()


def test_a_second_apply_replaces_the_first(pack):
    latent = _grey_latent()
    noise, sigmas = _noise(latent), karras(STEPS, DENOISE)
    twice = run_node(
        pack["SoftInpaintingApply"],
        model=_patched(pack, mask_blend_scale=3.0),
        settings=_settings(pack, mask_blend_scale=0.2),
    )[0]
    once = _patched(pack, mask_blend_scale=0.2)
    assert torch.equal(
        ksample(twice, latent, sigmas, noise)["samples"], ksample(once, latent, sigmas, noise)["samples"]
    )
