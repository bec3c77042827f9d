"""The Composite node in the ComfyUI stand-in: the WebUI's overlay composite for the same latents,
and its edges (no mask, another mask size, batches, images that are no whole number of latents)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from comfy_harness import load_pack, run_node, sd_model
from webui_harness import disc_mask, photo, start_webui

from lib_soft_inpainting.settings import SPECS_BY_NAME
from soft_inpainting_comfy.composite import to_pictures
from soft_inpainting_comfy.specs import CUSTOM_PRESET

SIZE = (96, 96)
HOLE = (30, 30, 66, 66)
VALUES = {
    "mask_blend_power": 1.5,
    "mask_blend_scale": 0.8,
    "inpaint_detail_preservation": 4,
    "composite_mask_influence": 0.2,
    "composite_difference_threshold": 0.5,
    "composite_difference_contrast": 2,
}


@pytest.fixture(params=["0.3.64", "0.3.40"])
def pack(request):
    return load_pack(request.param)


def _settings(pack, **values):
    inputs = {SPECS_BY_NAME[name].snake_label: value for name, value in {**VALUES, **values}.items()}
    return run_node(pack["SoftInpaintingSettings"], preset=CUSTOM_PRESET, **inputs)[0]


def _image(picture):
    return torch.from_numpy(np.asarray(picture.convert("RGB"))).float()[None] / 255.0


def _webui_job(batch=2):
    webui = start_webui(with_xyz=False)
    samples = []
    post_sample = webui.script.post_sample

    def record(p, ps, *a):
        samples.append(ps.samples.clone())
        return post_sample(p, ps, *a)

    webui.script.post_sample = record
    p, processed = webui.run(
        script_args=webui.args(True, *VALUES.values()),
        width=SIZE[0],
        height=SIZE[1],
        mask=disc_mask(SIZE, HOLE),
        batch_size=batch,
        steps=8,
        denoising_strength=0.75,
        mask_blur=8,
    )
    return p, processed, samples[0]


def _decoded(p, samples):
    return torch.clamp((p.sd_model.decode(samples) + 1.0) / 2.0, 0, 1).permute(0, 2, 3, 1)


def test_the_composite_equals_the_webui_overlay_composite(pack):
    p, processed, samples = _webui_job(batch=2)
    model = sd_model(scale_factor=0.5)  # LATENTs hold unscaled latents; process_in scales them back
    image, mask = run_node(
        pack["SoftInpaintingComposite"],
        settings=_settings(pack),
        model=model,
        original_image=_image(p.init_images[0]),
        decoded_image=_decoded(p, samples),
        original_latent={"samples": p.init_latent / 0.5},
        sampled_latent={"samples": samples / 0.5, "noise_mask": p.nmask[:1]},
    )
    assert image.shape == (2, SIZE[1], SIZE[0], 3) and mask.shape == (2, SIZE[1], SIZE[0])
    for i, picture in enumerate(to_pictures(image)):
        ours = np.asarray(picture).astype(int)
        theirs = np.asarray(processed.images[i].convert("RGB")).astype(int)
        assert np.abs(ours - theirs).max() == 0
        webui_mask = np.asarray(p.soft_inpainting.masks[i]) if hasattr(p, "soft_inpainting") else None
        if webui_mask is not None:
            assert np.abs(np.round(mask[i].numpy() * 255) - webui_mask).max() == 0
    assert 0 < mask.mean() < 1


def test_the_latent_scale_comes_from_the_model(pack):
    p, _, samples = _webui_job(batch=1)
    inputs = {"original_image": _image(p.init_images[0]), "decoded_image": _decoded(p, samples)}
    out = {}
    for scale in (0.5, 0.25):
        _, out[scale] = run_node(
            pack["SoftInpaintingComposite"],
            settings=_settings(pack),
            model=sd_model(scale_factor=scale),
            **inputs,
            original_latent={"samples": p.init_latent / 0.5},
            sampled_latent={"samples": samples / 0.5, "noise_mask": p.nmask[:1]},
        )
    assert out[0.25].mean() < out[0.5].mean()  # half the measured change: more original kept


def test_without_any_mask_the_decoded_image_passes_through(pack, caplog):
    decoded = torch.rand(2, 64, 64, 3)
    latent = {"samples": torch.randn(2, 4, 8, 8)}
    with caplog.at_level(logging.WARNING, "soft_inpainting"):
        image, mask = run_node(
            pack["SoftInpaintingComposite"],
            settings=_settings(pack),
            model=sd_model(),
            original_image=torch.rand(1, 64, 64, 3),
            decoded_image=decoded,
            original_latent=latent,
            sampled_latent=latent,
        )
    assert torch.equal(image, decoded) and torch.equal(mask, torch.ones(2, 64, 64))
    assert "no MASK and no noise_mask" in caplog.text


def test_a_mask_of_another_size_is_resized_as_comfyui_resizes_noise_masks(pack):
    gen = torch.Generator().manual_seed(0)
    orig = torch.randn(1, 4, 8, 8, generator=gen)
    sampled = orig + torch.randn(3, 4, 8, 8, generator=gen) * torch.linspace(0, 2, 8)
    big = torch.zeros(1, 200, 200)
    big[:, 50:150, 40:160] = 1.0
    small = torch.nn.functional.interpolate(big[None], size=(8, 8), mode="bilinear")[0]
    common = {
        "settings": _settings(pack),
        "model": sd_model(),
        "original_image": _image(photo((64, 64))),
        "decoded_image": torch.rand(3, 64, 64, 3, generator=gen),
        "original_latent": {"samples": orig},
    }
    with_big = run_node(
        pack["SoftInpaintingComposite"], **common, sampled_latent={"samples": sampled}, mask=big
    )
    with_small = run_node(
        pack["SoftInpaintingComposite"],
        **common,
        sampled_latent={"samples": sampled, "noise_mask": small[None]},
    )
    assert torch.equal(with_big[0], with_small[0]) and torch.equal(with_big[1], with_small[1])
    assert with_big[0].shape[0] == 3


def test_an_original_that_is_no_whole_number_of_latents_is_cropped_as_the_vae_crops(pack):
    picture = photo((70, 69))
    cropped = picture.crop((3, 2, 67, 66))  # (70 % 8) // 2 = 3, (69 % 8) // 2 = 2
    gen = torch.Generator().manual_seed(1)
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=gen)}
    sampled = {
        "samples": latent["samples"] + 3 * torch.randn(1, 4, 8, 8, generator=gen),
        "noise_mask": torch.ones(1, 1, 8, 8),
    }
    common = {
        "settings": _settings(pack),
        "model": sd_model(),
        "decoded_image": torch.rand(1, 64, 64, 3),
        "original_latent": latent,
        "sampled_latent": sampled,
    }
    a = run_node(pack["SoftInpaintingComposite"], original_image=_image(picture), **common)
    b = run_node(pack["SoftInpaintingComposite"], original_image=_image(cropped), **common)
    assert torch.equal(a[0], b[0])
