"""The no-download demo, its weight-free denoiser, and ``python -m lib_soft_inpainting demo``."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib_soft_inpainting.cli import main
from lib_soft_inpainting.demo import (
    PANEL_LABELS,
    SIZE,
    BlockCodec,
    DemoScene,
    build_scene,
    run_demo,
    seam_energy,
)
from lib_soft_inpainting.demo.data import load_photo
from lib_soft_inpainting.demo.patch_posterior import PatchPosteriorDenoiser
from lib_soft_inpainting.demo.posterior import PosteriorMeanDenoiser

ROOT = Path(__file__).resolve().parents[1]
CAPTION = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"))


def pixels(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("RGB")).astype(int)


def test_panel_has_five_tiles_showing_the_parts(demo):
    panel = Image.open(demo.panel_path)
    assert panel.size == (len(PANEL_LABELS) * SIZE, SIZE + CAPTION)
    scene = build_scene()
    parts = [scene.photo, scene.mask, demo.hard, demo.soft, demo.adaptive_mask]
    for i, part in enumerate(parts):
        assert part.size == (SIZE, SIZE)
        tile = panel.crop((i * SIZE, 0, (i + 1) * SIZE, SIZE))
        assert np.array_equal(pixels(tile), pixels(part)), PANEL_LABELS[i]
    names = sorted(path.name for path in demo.files)
    assert names == sorted(["soft_inpainting_demo.png", "demo_original.png", "demo_mask.png", "demo_hard.png",
                            "demo_soft.png", "demo_adaptive_mask.png"])
    assert all(path.is_file() for path in demo.files)


def test_soft_inpainting_leaves_a_weaker_seam_than_the_hard_mask(demo):
    assert 0 < demo.seam_soft < demo.seam_hard
    assert demo.seam_soft == pytest.approx(seam_energy(demo.soft, build_scene().photo, build_scene().mask))


def test_both_runs_keep_the_original_where_nothing_may_change(demo):
    scene = build_scene()
    original = pixels(scene.photo)
    mask = np.asarray(scene.mask)
    assert np.array_equal(pixels(demo.hard)[mask == 0], original[mask == 0])
    kept = np.asarray(demo.adaptive_mask) == 0
    assert kept.mean() > 0.3
    assert np.array_equal(pixels(demo.soft)[kept], original[kept])
    # and both painted something new where the mask is white
    core = mask == 255
    assert np.abs(pixels(demo.hard) - original)[core].mean() > 5
    assert np.abs(pixels(demo.soft) - original)[core].mean() > 5


def test_the_command_prints_the_seam_measure_and_a_progress_bar(capsys, tmp_path):
    code = main(["demo", "--out", str(tmp_path), "--steps", "8"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    hard = float(re.search(r"hard-mask inpaint\s+([0-9.]+)", captured.out).group(1))
    soft = float(re.search(r"soft inpaint\s+([0-9.]+)", captured.out).group(1))
    assert soft < hard
    assert f"panel: {tmp_path / 'soft_inpainting_demo.png'}" in captured.out
    assert " hard [" in captured.err and " soft [" in captured.err
    assert re.search(r"soft \[#+\] (\d+)/\1", captured.err)  # the bar fills up


def test_python_dash_m_demo_needs_no_extra(tmp_path):
    """The module entry point runs the demo, importing neither diffusers nor transformers."""
    code = ("import runpy, sys\n"
            "sys.argv = ['lib_soft_inpainting', 'demo', '--quiet', '--steps', '4', '--out', "
            f"{str(tmp_path)!r}]\n"
            "try:\n"
            "    runpy.run_module('lib_soft_inpainting', run_name='__main__')\n"
            "except SystemExit as done:\n"
            "    status = done.code\n"
            "heavy = sorted(m for m in ('diffusers', 'transformers', 'gradio') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
            "sys.exit(status)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "seam energy" in done.stdout
    assert (tmp_path / "soft_inpainting_demo.png").is_file()


def test_block_codec_is_lossless():
    photo = load_photo().crop((0, 0, 40, 30))
    codec = BlockCodec()
    latents = codec.encode(photo)
    assert latents.shape == (1, 12, 15, 20)
    assert np.array_equal(pixels(codec.decode(latents)[0]), pixels(photo))


def test_seam_energy_is_zero_without_change_and_measures_a_step():
    flat = Image.new("RGB", (32, 32), (100, 100, 100))
    band = Image.new("L", (32, 32), 128)  # grey everywhere: all of it is transition band
    assert seam_energy(flat, flat, band) == 0
    stepped = np.full((32, 32, 3), 100, np.uint8)
    stepped[:, 16:] += 40
    # one column of the 31x31 gradient grid jumps by 40/255 in each of the three channels
    expected = 3 * (40 / 255) ** 2 / 31
    assert seam_energy(Image.fromarray(stepped), flat, band) == pytest.approx(expected)


def brute_force_posterior_mean(items: np.ndarray, x: np.ndarray, sigma: float) -> np.ndarray:
    """``Σ p(x | xᵢ) xᵢ / Σ p(x | xᵢ)`` with the Gaussian densities written out, term by term."""
    densities = []
    for item in items:
        density = 1.0
        for value, centre in zip(x.ravel(), item.ravel(), strict=True):
            density *= math.exp(-((value - centre) ** 2) / (2 * sigma ** 2))
            density /= math.sqrt(2 * math.pi) * sigma
        densities.append(density)
    total = sum(densities)
    return sum(d * item for d, item in zip(densities, items, strict=True)) / total


@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0])
def test_posterior_mean_denoiser_is_exact(sigma):
    generator = torch.Generator().manual_seed(3)
    items = torch.rand(4, 2, 2, 2, generator=generator, dtype=torch.float64) * 2 - 1
    x = items[[1, 2]] + sigma * torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64)
    denoised = PosteriorMeanDenoiser(items)(x, sigma)
    for b in range(2):
        expected = brute_force_posterior_mean(items.numpy(), x[b].numpy(), sigma)
        np.testing.assert_allclose(denoised[b].numpy(), expected, rtol=1e-10, atol=1e-12)


def test_posterior_mean_settles_on_the_nearest_item_and_keeps_the_callers_dtype():
    items = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 0.0]]]])
    x = torch.tensor([[[[0.1, 0.8]]]])
    denoised = PosteriorMeanDenoiser(items)(x, 0.01)
    assert denoised.dtype == torch.float32
    assert torch.equal(denoised, items[:1])
    # at a huge noise level the mean of the set
    assert torch.allclose(PosteriorMeanDenoiser(items)(x, 1e4), items.mean(dim=0, keepdim=True), atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        PosteriorMeanDenoiser(items)(x, 0.0)
    with pytest.raises(ValueError, match="shape"):
        PosteriorMeanDenoiser(items)(torch.zeros(1, 1, 2, 2), 1.0)


def brute_force_patch_mean(items: np.ndarray, x: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Kamb & Ganguli's local equivariant posterior mean, pixel by pixel and patch by patch."""
    radius = size // 2
    padded = np.pad(x, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    _, height, width = x.shape
    out = np.zeros_like(x)
    for i in range(height):
        for j in range(width):
            query = padded[:, i:i + size, j:j + size]
            logits, centres = [], []
            for item in items:
                for a in range(item.shape[1] - size + 1):
                    for b in range(item.shape[2] - size + 1):
                        patch = item[:, a:a + size, b:b + size]
                        logits.append(-((query - patch) ** 2).sum() / (2 * sigma ** 2))
                        centres.append(patch[:, radius, radius])
            logits = np.array(logits)
            weights = np.exp(logits - logits.max())
            out[:, i, j] = (weights[:, None] * np.array(centres)).sum(axis=0) / weights.sum()
    return out


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_patch_posterior_matches_the_pixel_by_pixel_oracle(sigma):
    generator = torch.Generator().manual_seed(5)
    items = torch.rand(2, 2, 6, 5, generator=generator) * 2 - 1
    x = torch.rand(1, 2, 4, 5, generator=generator) * 2 - 1
    denoiser = PatchPosteriorDenoiser(items, patch_sizes=((0.0, 3),))
    expected = brute_force_patch_mean(items.numpy().astype(np.float64), x[0].numpy().astype(np.float64),
                                      sigma, 3)
    np.testing.assert_allclose(denoiser(x, sigma)[0].numpy(), expected, rtol=1e-4, atol=1e-5)


def region_stays_put(denoiser, scene: DemoScene) -> tuple[float, float]:
    """At low sigma, the demo photo's latent pixels outside the mask (data the model knows):
    the share denoised back to their clean value, and their mean change."""
    init = BlockCodec().encode(scene.photo)
    sigma = 0.05
    noisy = init + sigma * torch.randn(init.shape, generator=torch.Generator().manual_seed(0))
    denoised = denoiser(noisy, sigma)
    outside = torch.from_numpy(np.asarray(scene.mask.resize(init.shape[-1:-3:-1])) == 0)
    change = (denoised - init).abs().amax(dim=1)[0][outside]
    return float((change < 1e-3).float().mean()), float(change.mean())


def test_a_region_that_matches_the_data_stays_put_at_low_noise():
    scene = build_scene()
    kept, change = region_stays_put(PatchPosteriorDenoiser(scene.items, excluded=scene.excluded), scene)
    assert kept > 0.8 and change < 0.01  # the noise alone is 0.05 per value
    # a denoiser over whole views snaps to one view instead: this property is what it lacks
    kept, change = region_stays_put(PosteriorMeanDenoiser(scene.items[1:]), scene)
    assert kept < 0.1 and change > 0.1


def test_patch_posterior_keeps_inactive_pixels_and_checks_its_input():
    items = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    active = torch.zeros(8, 8, dtype=torch.bool)
    active[2:5, 3:6] = True
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    denoised = PatchPosteriorDenoiser(items, active=active)(x, 1.0)
    assert denoised.dtype == torch.float64
    assert torch.equal(denoised[..., ~active], x[..., ~active])
    assert not torch.equal(denoised[..., active], x[..., active])
    with pytest.raises(ValueError, match="sigma"):
        PatchPosteriorDenoiser(items)(x, 0.0)
    with pytest.raises(ValueError, match="shape"):
        PatchPosteriorDenoiser(items)(torch.zeros(1, 2, 8, 8), 1.0)
    with pytest.raises(ValueError, match="odd"):
        PatchPosteriorDenoiser(items, patch_sizes=((0.0, 4),))
    with pytest.raises(ValueError, match="excluded"):
        PatchPosteriorDenoiser(items, excluded=torch.ones(1, 8, 8, dtype=torch.bool))(x, 1.0)


def test_the_guide_is_a_labelled_grid_of_six_settings_at_three_values(tmp_path):
    from lib_soft_inpainting.demo.guide import CAPTION as TILE_CAPTION
    from lib_soft_inpainting.demo.guide import HEADER, render_guide

    path = render_guide(tmp_path / "guide.png", steps=2)
    grid = np.asarray(Image.open(path).convert("RGB")).astype(int)
    row = HEADER + SIZE + TILE_CAPTION
    assert grid.shape == (6 * row, 3 * SIZE, 3)

    def tile(r: int, c: int) -> np.ndarray:
        return grid[r * row + HEADER:r * row + HEADER + SIZE, c * SIZE:(c + 1) * SIZE]

    # each row's default column is the same picture; each row's other values change it
    for r in range(6):
        default_col = 0 if r == 3 else 1  # mask influence's default is its lowest value
        assert np.array_equal(tile(r, default_col), tile(0, 1)), r
        others = [c for c in range(3) if c != default_col]
        assert any(not np.array_equal(tile(r, c), tile(r, default_col)) for c in others), r


def test_soft_result_has_no_edge_where_the_masks_support_ends(demo):
    """Where the mask is faint (1–31 of 255) the soft result stays with the photo, so nothing
    switches on at the support's edge (a whole-view denoiser changed it there by ~14 levels)."""
    scene = build_scene()
    mask = np.asarray(scene.mask)
    faint = (mask >= 1) & (mask < 32)
    assert np.abs(pixels(demo.soft) - pixels(scene.photo))[faint].mean() < 3
