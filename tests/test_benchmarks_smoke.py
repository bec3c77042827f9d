"""The benchmark command, run tiny, so it cannot rot; and its yardsticks checked against the core.

A benchmark against a wrong reference measures nothing, so the per-pixel reference and the
float64 blend must compute what the core computes (SPEC §9 tolerances).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import time

import numpy as np
import pytest
import torch

from benchmarks import cli, reference
from benchmarks.cases import make_case
from benchmarks.report import EXTRAPOLATED, MEASURED, Row, format_ratio, format_seconds
from benchmarks.timing import measure, measure_together
from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    latent_difference_masks,
    weighted_histogram_filter,
)


def test_command_writes_tables_csv_plot_and_memory(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["--sizes", "8", "12", "--batches", "1", "2", "--reference-max", "8", "--budget", "0",
                     "--min-repeats", "1", "--devices", "cpu", "--memory-size", "8", "--memory-batch", "1",
                     "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "(a) After sampling" in printed and "(b) Every sampler step" in printed
    assert "(c) ComfyUI, every sampler step" in printed
    assert "(d) 16-channel latents (SD3, Flux)" in printed and "- 16 channels, latent 128² batch 4" in printed
    assert "~" in printed  # extrapolated reference figures are marked
    assert "Key figures:" in printed and "(none of the key cases" in printed  # sizes 8 and 12 only
    assert "other processes used" in printed or "unknown (no /proc/stat)" in printed

    with (out / "timings.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_key = {(r["method"], int(r["latent_size"]), int(r["batch"])): r for r in rows}
    for size in (8, 12):
        for batch in (1, 2):
            for method in ("difference_masks", "pixel_stage", "post_sample", "difference_masks_per_pixel",
                           "post_sample_per_pixel", "hard_blend", "stage1_float64", "stage1_upstream",
                           "stage1"):
                row = by_key[(method, size, batch)]
                assert float(row["median_s"]) > 0
                assert int(row["pixels"]) == (8 * size) ** 2 * batch
    for batch in (1, 4):  # ComfyUI's step and the 16-channel figures: always 128² latents, batches 1 and 4
        for method in ("comfy_hard_blends", "comfy_patched_blend", "blend_4ch", "blend_16ch",
                       "flow_step_16ch", "flow_step_packed", "masks_4ch", "masks_16ch", "masks_packed"):
            assert float(by_key[(method, 128, batch)]["median_s"]) > 0
    # The reference ran at 8², batch 1 only; everything else is scaled by pixel count and says so.
    assert by_key[("difference_masks_per_pixel", 8, 1)]["source"] == MEASURED
    scaled = by_key[("difference_masks_per_pixel", 12, 2)]
    assert scaled["source"] == EXTRAPOLATED
    ratio = float(scaled["median_s"]) / float(by_key[("difference_masks_per_pixel", 8, 1)]["median_s"])
    assert ratio == pytest.approx(12 * 12 * 2 / (8 * 8))
    assert EXTRAPOLATED in by_key[("post_sample_per_pixel", 12, 1)]["source"]

    memory = json.loads((out / "memory.json").read_text(encoding="utf-8"))
    assert memory["picture_size"] == 64 and memory["batch"] == 1
    for part in ("difference_masks", "post_sample"):
        assert memory[part]["peak_extra_mib"] >= memory[part]["retained_mib"] >= 0
    assert "Peak extra memory" in (out / "report.txt").read_text(encoding="utf-8")
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert (out / "timings.png").exists() == has_matplotlib


def test_measure_calls_warmup_then_at_least_min_repeats():
    calls = []
    timing = measure(lambda: calls.append(1), budget_s=0, min_repeats=4, warmup=2)
    assert len(calls) == 6 and timing.repeats == 4
    assert 0 <= timing.best <= timing.median


def test_measure_together_alternates_rounds():
    order = []
    timings = measure_together({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                               budget_s=0, min_repeats=3, warmup=1)
    assert order == ["a", "b"] * 4  # one warm-up each, then three rounds
    assert timings["a"].repeats == timings["b"].repeats == 3


def test_formatting_marks_extrapolated_figures():
    assert format_seconds(0.0123) == "12.3 ms"
    assert format_seconds(2.5, EXTRAPOLATED) == "~2.5 s"
    assert format_ratio(3.0, 0.002) == "1,500×"
    assert format_ratio(1.0, 0.5, EXTRAPOLATED) == "~2×"


def test_reference_kernel_matches_the_core():
    kernel, center = reference.reference_kernel()
    core_kernel, core_center = get_gaussian_kernel(1.5, 2)
    assert center == core_center
    np.testing.assert_allclose(np.array(kernel), core_kernel, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("pmin", "pmax", "min_width"), [(0.9, 1.0, 1.0), (0.25, 0.75, 1.0), (0.5, 0.5, 0.0),
                                                         (0.0, 1.0, 3.0)])
def test_per_pixel_filter_matches_the_core(pmin, pmax, min_width):
    gen = np.random.default_rng(7)
    img = gen.normal(size=(11, 6)).astype(np.float32)
    img[2:5, 1:4] = 0.5  # ties
    kernel, center = reference.reference_kernel()
    ours = weighted_histogram_filter(img, np.array(kernel), center, pmin, pmax, min_width)
    theirs = reference.per_pixel_filter(img, kernel, center, pmin, pmax, min_width)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_per_pixel_difference_masks_match_the_core():
    case = make_case(24, 2, seed=5)
    ours = latent_difference_masks(case.settings, case.nmask, case.latent_orig, case.latent_processed).numpy()
    theirs = case.difference_masks_per_pixel()
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.001
    assert ours.min() < 10 and ours.max() > 245  # the case has unchanged and changed regions


@pytest.mark.parametrize("upstream_norm", [False, True])
@pytest.mark.parametrize("batched_mask", [False, True])
@pytest.mark.parametrize("contrast_boost", [1.0, 4.0, 32.0])
def test_float64_blend_matches_the_core(contrast_boost, batched_mask, upstream_norm):
    settings = SoftInpaintingSettings(1, 0.5, contrast_boost, 0, 0.5, 2)
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 4, 9, 9, generator=gen), torch.randn(2, 4, 9, 9, generator=gen)
    t = torch.rand((2, 4, 9, 9) if batched_mask else (4, 9, 9), generator=gen)
    ours = latent_blend(settings, a, b, t)
    theirs = reference.float64_latent_blend(settings, a, b, t, upstream_norm=upstream_norm)
    error = torch.linalg.vector_norm(ours.double() - theirs.double(), dim=1)
    assert torch.all(error <= 1e-5 * torch.linalg.vector_norm(theirs.double(), dim=1) + 1e-12)
    # Not a tautology: a different power gives a clearly different blend.
    other = SoftInpaintingSettings(1, 0.5, 2.0, 0, 0.5, 2)
    assert not torch.allclose(reference.float64_latent_blend(other, a, b, t), theirs, atol=1e-3)


def test_stage1_case_calls_agree():
    """The three stage-1 figures of a case time the same blend, computed three ways."""
    case = make_case(16, 2, seed=3)
    ours, f64, upstream = case.stage1(), case.stage1_float64(), case.stage1_upstream()
    torch.testing.assert_close(f64, upstream, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours, f64, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, case.hard_blend(), atol=1e-3)  # soft blending did something


def test_hard_blend_is_the_hosts_paste():
    nmask = torch.tensor([0.0, 1.0, 0.25])
    a, b = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([3.0, 3.0, 3.0])
    assert torch.allclose(reference.hard_blend(nmask, 1 - nmask, a, b), torch.tensor([1.0, 3.0, 1.5]))


def test_cases_are_seeded_and_shaped_like_the_host():
    one, two = make_case(16, 3, seed=1), make_case(16, 3, seed=1)
    assert torch.equal(one.latent_processed, two.latent_processed)
    assert one.nmask.shape == (4, 16, 16) and one.latent_orig.shape == (3, 4, 16, 16)
    assert one.init_image.size == (128, 128)
    pictures = one.post_sample()
    assert len(pictures.masks) == len(pictures.overlays) == 3
    assert pictures.overlays[0].size == (128, 128) and pictures.overlays[0].mode == "RGBA"


def test_key_figures_grade_only_the_hook_and_stage_1(capsys):
    def row(stage, method, seconds, size=128, device="cpu"):
        return Row(device, stage, method, size, 1, seconds, seconds, 3)

    rows = [row("post_sample", "difference_masks", 0.01),
            row("post_sample", "difference_masks_per_pixel", 5.0),
            row("post_sample", "post_sample", 0.2),
            row("stage1", "stage1", 1e-3), row("stage1", "stage1_float64", 2e-3),
            row("stage1", "hard_blend", 1e-4),
            row("stage1", "stage1", 1e-3, device="cuda"),
            row("stage1", "stage1_float64", 1.5e-3, device="cuda"),
            row("stage1", "hard_blend", 1e-4, device="cuda")]
    log = cli.Log()
    cli._key_figures(rows, ["cpu", "cuda"], [1], log)
    text = "\n".join(log.lines)
    masks_line = next(line for line in log.lines if line.startswith("- difference masks"))
    assert masks_line.endswith("5 s (measured): 500× faster")  # a ratio, no target, no verdict
    assert "1000" not in text
    assert "200 ms (target < 0.1 s: NOT met)" in text
    assert "(cpu): float64 ÷ ours = 2× (target >= 1×: met); ours ÷ hard blend = 10×" in text
    assert "(cuda): float64 ÷ ours = 1.5× (target >= 2×: NOT met)" in text


def test_measure_together_gives_fast_calls_more_samples_in_alternating_slots():
    order = []

    def fast():
        order.append("fast")

    def slow():
        order.append("slow")
        time.sleep(0.005)

    timings = measure_together({"fast": fast, "slow": slow}, budget_s=0.2, min_repeats=2,
                               max_calls_per_slot=7)
    assert timings["fast"].repeats > timings["slow"].repeats >= 2
    after_warmup = order[2:]
    # Slots alternate: a block of fast calls, then the slow call(s), round after round.
    assert after_warmup[:7] == ["fast"] * 7 and after_warmup[7] == "slow"
    assert timings["slow"].median >= 0.005 > timings["fast"].median


def test_comfy_step_times_the_real_blends():
    """The ComfyUI figures time the patch's own blend and both of ComfyUI's hard blends."""
    from benchmarks.comfy import ComfyStep

    step = ComfyStep(2, "cpu")
    t = get_modified_nmask(step.run.settings, step.mask, step.sigma[0])
    expected = latent_blend(step.run.settings, step.latent, step.out, t)
    torch.testing.assert_close(step.patched_blend(), expected)
    x_in, out = step.hard_blends()
    keep = step.mask == 0
    assert torch.equal(out[keep], step.latent[keep])
    assert torch.equal(x_in[keep], (step.latent + step.noise * step.sigma.reshape(-1, 1, 1, 1))[keep])


def test_channel_cases_time_what_the_adapter_computes():
    """The 16-channel figures time real work: the packed flow step is the unpacked one, packed;
    the packed masks are the 16-channel masks; 4 and 16 channels blend different latents."""
    from benchmarks.channels import ChannelCases
    from lib_soft_inpainting.integrations.diffusers_flow import pack_latents

    cases = ChannelCases(2, "cpu")
    assert cases.four.latent_orig.shape[1] == 4 and cases.sixteen.latent_orig.shape[1] == 16
    assert cases.packed_sample.shape == (2, 64 * 64, 64)
    assert torch.equal(cases.flow_step_packed(), pack_latents(cases.flow_step()))
    assert torch.equal(cases.masks_packed(), cases.sixteen.difference_masks())
    masks = cases.sixteen.difference_masks()
    assert masks.min() < 10 and masks.max() > 245  # unchanged and changed regions, as with 4 channels
    x0 = cases.sample - 0.6 * cases.flow_step()
    assert not torch.allclose(x0, cases.sixteen.latent_processed, atol=1e-3)  # the blend did something
