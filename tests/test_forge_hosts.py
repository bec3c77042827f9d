"""The Forge family through variants of the stand-in (``tests/host/variants``): which per-step path
the extension picks, that its soft blend runs every step with the sampler's sigma on each, that grey
regions are fed one noise, that unmasked pixels stay the original, and start-up on their layouts.

Variants: ``forge_main`` mirrors Forge ``main`` (commit dfdcbab6) — input-side hard blend
outside any hook; ``neo`` Neo (its public fork's commit 5692d2d1) — the same, with batched latent
masks; ``forge_classic_2025_02`` mirrors Forge Classic before 2025-04 (commit 1f95d717) —
no per-step ``on_mask_blend``, its own hard blends; ``xyz_classic`` its ``lib_xyz`` layout; Forge
``main``'s ``InputAccordion`` is a function. The plain stand-in is A1111 v1.10.1 (reForge ``main``
and Forge Classic since 2025-04 blend the same way).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from modules import errors, scripts, sd_samplers
from webui_harness import disc_mask, photo, start_webui

from lib_soft_inpainting.settings import TIMESTEP_INFOTEXT_KEY
from soft_inpainting_webui import host_paths

SIZE = (192, 192)
HOLE = (56, 56, 136, 136)
FORGE_HOSTS = ("forge_main", "neo", "forge_classic_2025_02")
EXPECTED_PATH = {"a1111": host_paths.StepPath.HOOK, "forge_main": host_paths.StepPath.NEUTRAL_INPUT,
                 "neo": host_paths.StepPath.NEUTRAL_INPUT,
                 "forge_classic_2025_02": host_paths.StepPath.CALLBACKS}


def _run(webui, *values, **kwargs):
    base = {"width": SIZE[0], "height": SIZE[1], "mask": disc_mask(SIZE, HOLE), "mask_blur": 12,
            "steps": 8, "denoising_strength": 0.75}
    return webui.run(script_args=webui.args(*(values or (True,))), **{**base, **kwargs})


def _record_blends(webui, monkeypatch):
    """Every soft blend the extension does: (sigma, the nmask it used)."""
    calls = []
    original = webui.extension._soft_blend

    def spy(state, init_latent, current_latent, nmask, sigma):
        calls.append((float(sigma), nmask.clone()))
        return original(state, init_latent, current_latent, nmask, sigma)

    monkeypatch.setattr(webui.extension, "_soft_blend", spy)
    return calls


def _unbatched(mask: torch.Tensor) -> torch.Tensor:
    """``[C, H, W]`` from the host's latent mask (Neo gives it a batch axis: ``[1, C, H, W]``)."""
    return mask.reshape(mask.shape[-3:])


def _grey_ring_noise(p) -> tuple[float, int]:
    """The noise the model was fed at the first step, relative to that step's sigma, in the grey
    ring (mask 0.35–0.65): the std of ``(x − init) / σ`` there, and how many values it covers."""
    x, sigma = p.sampler.denoiser.seen_inputs[0]
    nmask = _unbatched(p.nmask)
    ring = (nmask > 0.35) & (nmask < 0.65)
    noise = (x - p.init_latent) / sigma[:, None, None, None]
    values = noise[:, ring]
    return float(values.std()), values.numel()


@pytest.mark.parametrize("host", sorted(EXPECTED_PATH))
def test_the_path_is_found_from_the_hosts_sampler_and_said_once(host, capsys) -> None:
    webui = start_webui(host=host)
    assert webui.extension.STEP_PATH is EXPECTED_PATH[host]
    lines = [line for line in capsys.readouterr().out.splitlines() if "per-step blend" in line]
    assert lines == [f"[Soft Inpainting] {host_paths.MESSAGES[EXPECTED_PATH[host]]}"]


@pytest.mark.parametrize("host", sorted(EXPECTED_PATH))
def test_soft_blend_runs_every_step_with_the_samplers_sigma_and_the_real_mask(host, monkeypatch) -> None:
    webui = start_webui(host=host)
    calls = _record_blends(webui, monkeypatch)
    p, _ = _run(webui)
    steps = int(0.75 * 8) + 1
    schedule = sd_samplers.karras_sigmas(8)[8 - steps:-1]
    assert [s for s, _ in calls] == pytest.approx(schedule.tolist())
    for _, nmask in calls:
        assert torch.equal(nmask, p.nmask), "the job's own grey mask, not the neutral one"
    assert ((p.nmask > 0) & (p.nmask < 1)).any()
    assert errors.reported == []


@pytest.mark.parametrize("host", sorted(EXPECTED_PATH))
def test_grey_regions_are_fed_one_noise_at_the_samplers_level(host) -> None:
    webui = start_webui(host=host)
    p, _ = _run(webui, batch_size=4)
    std, count = _grey_ring_noise(p)
    assert count > 500
    assert 0.93 < std < 1.07, f"noise std {std:.3f} of sigma in the grey ring"


def test_without_the_neutral_mask_forge_feeds_grey_regions_two_noises(monkeypatch) -> None:
    """The measure above can fail: with the A1111 path on Forge ``main`` the ring sees ≈ 0.75 σ."""
    webui = start_webui(host="forge_main")
    monkeypatch.setattr(webui.extension, "STEP_PATH", host_paths.StepPath.HOOK)
    p, _ = _run(webui, batch_size=4)
    std, _ = _grey_ring_noise(p)
    assert 0.6 < std < 0.85


@pytest.mark.parametrize("host", FORGE_HOSTS)
def test_pictures_match_the_a1111_path_and_keep_the_original_where_the_mask_is_zero(host) -> None:
    reference_p, reference = _run(start_webui(), batch_size=2, n_iter=2)
    p, processed = _run(start_webui(host=host), batch_size=2, n_iter=2)
    assert len(processed.images) == len(reference.images) == 4
    for ours, theirs in zip(processed.images, reference.images, strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    original = np.asarray(photo(SIZE).convert("RGB"))
    for image, mask in zip(processed.images[-2:], p.soft_inpainting.masks, strict=True):
        unchanged = np.asarray(mask) == 0
        assert unchanged.mean() > 0.1
        assert np.array_equal(np.asarray(image)[unchanged], original[unchanged])
    assert torch.equal(_unbatched(p.nmask), reference_p.nmask)
    assert torch.equal(_unbatched(p.mask), reference_p.mask)


@pytest.mark.parametrize("host", FORGE_HOSTS)
def test_strength_changes_the_picture_on_each_host(host) -> None:
    webui = start_webui(host=host)
    _, low = _run(webui, True, 1, 0)
    _, high = _run(webui, True, 1, 8)
    assert not np.array_equal(np.asarray(low.images[0]), np.asarray(high.images[0]))


def test_disabled_jobs_are_left_to_the_host(monkeypatch) -> None:
    webui = start_webui(host="forge_classic_2025_02")
    calls = _record_blends(webui, monkeypatch)
    p, _ = _run(webui, False)
    assert calls == [] and p.mask_round is True and float(p.mask.sum()) > 0


@pytest.mark.parametrize(("ddim_like", "converted"), [("a1111", True), ("forge", False)])
def test_timestep_is_converted_only_where_the_host_did_not(ddim_like, converted) -> None:
    """A1111's timestep denoiser passes a timestep with ``mask_before_denoising``; the Forge family's
    set ``classic_ddim_eps_estimation`` and have already turned it into a sigma."""
    webui = start_webui(host="forge_main")
    p = webui.job(width=64, height=64)
    p.scripts.before_process(p)
    p.scripts.process(p)
    p.init()

    class Denoiser:
        alphas = torch.linspace(0.999, 0.01, 1000)
        mask_before_denoising = ddim_like == "a1111"
        classic_ddim_eps_estimation = ddim_like == "forge"

    current = torch.randn_like(p.init_latent)
    sigma = torch.tensor([500.0] if converted else [2.5])
    mba = scripts.MaskBlendArgs(current, p.nmask, p.init_latent, p.mask, current, denoiser=Denoiser(),
                                sigma=sigma)
    webui.script.on_mask_blend(p, mba)
    used = sigma[0] if not converted else ((1 - Denoiser.alphas[500]) / Denoiser.alphas[500]).sqrt()
    expected = webui.extension._soft_blend(p.soft_inpainting, p.init_latent, current, p.nmask, used)
    torch.testing.assert_close(mba.blended_latent, expected)
    assert (TIMESTEP_INFOTEXT_KEY in p.extra_generation_params) is converted


# --- start-up on the family's layouts ---------------------------------------------------------------

def _axis_labels(options) -> list[str]:
    return [o.label for o in options if o.label.startswith("[Soft inpainting]")]


@pytest.mark.parametrize("layout", ["a1111", "classic"])
@pytest.mark.parametrize("api_only", [False, True])
def test_axes_exist_exactly_once_in_both_start_modes(layout, api_only, capsys) -> None:
    webui = start_webui(xyz_layout=layout, api_only=api_only)
    plot = next(s for s in webui.runner.selectable_scripts if s.title().lower() == "x/y/z plot")
    labels = _axis_labels(plot.current_axis_options)
    assert len(labels) == 8 and len(set(labels)) == 8  # enabled, six settings, the conversion
    assert _axis_labels(webui.xyz.axis_options) == labels
    # Plain axes: the plot offers them on txt2img too (for the inpainting passes of ADetailer).
    assert all(not hasattr(o, "is_img2img") for o in webui.xyz.axis_options if o.label in labels)
    assert errors.reported == [] and "Traceback" not in capsys.readouterr().err
    p = webui.job(width=64, height=64)
    on, off = plot.run_axis(p, "[Soft inpainting] Enabled", ["True", "False"])
    assert "Soft inpainting enabled" in on.extra_generation_params
    assert "Soft inpainting enabled" not in off.extra_generation_params


def test_an_unusable_plot_layout_is_skipped_with_one_line(monkeypatch) -> None:
    webui = start_webui()
    for name in [n for n in sys.modules if n.startswith("lib_xyz")]:
        monkeypatch.delitem(sys.modules, name)
    del webui.xyz.AxisOptionImg2Img, webui.xyz.AxisOption
    webui.xyz.axis_options.clear()
    message = webui.extension.xyz.register_axes(scripts.scripts_data)
    assert message and "skipped" in message and webui.xyz.axis_options == []


def test_input_accordion_as_a_function_builds_and_runs(capsys) -> None:
    webui = start_webui(host="forge_main", accordion="function")
    enabled = webui.runner.inputs[webui.script.args_from]
    assert enabled.get_block_name() == "checkbox" and enabled.value is False
    p, processed = _run(webui)
    assert p.soft_inpainting is not None and len(processed.images) == 1
    assert errors.reported == []


# --- reading the host's sampler ---------------------------------------------------------------------

A1111_SHAPE = '''
def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
    def apply_blend(current_latent):
        blended_latent = current_latent * self.nmask + self.init_latent * self.mask
        self.p.scripts.on_mask_blend(self.p, mba)
        return blended_latent
    if self.mask_before_denoising and self.mask is not None:
        x = apply_blend(x)
    denoised = model(x)
    if not self.mask_before_denoising and self.mask is not None:
        denoised = apply_blend(denoised)
    return denoised
'''
FORGE_SHAPE = '''
def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
    if self.mask is not None:
        x = x * self.nmask + noisy * self.mask
    denoised = model(x)
    if self.mask is not None:
        self.p.scripts.on_mask_blend(self.p, mba)
    return denoised
'''
OLD_CLASSIC_SHAPE = '''
def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
    if self.mask is not None:
        x = x * self.nmask + noisy * self.mask
    denoised = model(x)
    if self.mask is not None:
        denoised = denoised * self.nmask + self.init_latent * self.mask
    return denoised
'''


@pytest.mark.parametrize(("source", "path"), [(A1111_SHAPE, host_paths.StepPath.HOOK),
                                              (FORGE_SHAPE, host_paths.StepPath.NEUTRAL_INPUT),
                                              (OLD_CLASSIC_SHAPE, host_paths.StepPath.CALLBACKS)])
def test_the_sampler_shapes_of_the_hosts_map_to_their_paths(source, path) -> None:
    assert host_paths.choose(host_paths.read_forward(source)) is path


def test_an_unreadable_sampler_keeps_the_a1111_path(monkeypatch) -> None:
    from modules import sd_samplers_cfg_denoiser

    monkeypatch.setattr(sd_samplers_cfg_denoiser, "CFGDenoiser", object())
    path, message = host_paths.detect()
    assert path is host_paths.StepPath.HOOK and "could not read" in message


def test_restoring_twice_and_a_job_without_masks_are_harmless() -> None:
    class Job:
        mask = torch.zeros(4, 2, 2)
        nmask = torch.ones(4, 2, 2) * 0.5

    p = Job()
    real = host_paths.hand_sampler_neutral_masks(p)
    assert torch.equal(p.nmask, torch.ones(4, 2, 2)) and torch.equal(p.mask, torch.zeros(4, 2, 2))
    host_paths.restore_masks(p, real)
    host_paths.restore_masks(p, real)
    assert p.nmask is real.nmask and p.mask is real.mask
    p.mask = None
    assert host_paths.hand_sampler_neutral_masks(p) is None


def test_a_plot_whose_axis_class_fails_costs_one_line_not_a_traceback(capsys) -> None:
    webui = start_webui()
    webui.xyz.axis_options.clear()

    def broken(*args, **kwargs):
        raise TypeError("unexpected signature")

    webui.xyz.AxisOption = broken
    webui.extension._register_axes()
    out = capsys.readouterr().out
    assert "X/Y/Z plot axes skipped: TypeError: unexpected signature" in out and "Traceback" not in out


def test_before_the_host_imports_its_sampler_the_file_is_read_not_imported(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, host_paths.DENOISER_MODULE)
    path, message = host_paths.detect()
    assert path is host_paths.StepPath.HOOK and "could not read" not in message
    assert host_paths.DENOISER_MODULE not in sys.modules
