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
    build_scene,
    run_demo,
    seam_energy,
)
from lib_soft_inpainting.demo_data import load_photo
from lib_soft_inpainting.integrations.posterior import PosteriorMeanDenoiser

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
