"""Stage 1 stays on the device: no host synchronisation in the per-step path.

The per-step path (``get_modified_nmask`` + ``latent_blend``) runs once per sampler step on the
host's device; a single ``.item()``, CPU copy or data-dependent branch there would stall a GPU
every step. Tensors on the ``meta`` device have shapes and dtypes but no data, so any such access
raises: running the whole path on ``meta`` proves there is none.
"""

from __future__ import annotations

import pytest
import torch

from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_modified_nmask,
    latent_blend,
)
from lib_soft_inpainting import blend as blend_module

META = torch.device("meta")


def test_meta_tensors_refuse_data_access():
    """The premise of the tests below: on ``meta`` every way of reading data fails."""
    x = torch.ones(3, device=META)
    with pytest.raises((RuntimeError, NotImplementedError)):
        x.sum().item()
    with pytest.raises((RuntimeError, NotImplementedError)):
        x.cpu()
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(x.sum() > 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batched_mask", [False, True])
@pytest.mark.parametrize("power", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("contrast_boost", [1.0, 4.0, 32.0])
def test_stage1_runs_on_meta(dtype, batched_mask, power, contrast_boost):
    """One sampler step with no data access: shapes, dtype and device come out right."""
    settings = SoftInpaintingSettings(power, 0.5, contrast_boost, 0, 0.5, 2)
    batch, channels, height, width = 3, 4, 9, 7
    a = torch.empty(batch, channels, height, width, dtype=dtype, device=META)
    b = torch.empty_like(a)
    mask_shape = (batch, channels, height, width) if batched_mask else (channels, height, width)
    nmask = torch.empty(mask_shape, dtype=dtype, device=META)
    sigma = torch.empty(batch, dtype=torch.float32, device=META)

    t = get_modified_nmask(settings, nmask, sigma[0])
    out = latent_blend(settings, a, b, t)

    assert t.device == META and t.shape == nmask.shape
    assert out.device == META
    assert out.shape == a.shape
    assert out.dtype == dtype


def test_stage1_with_a_float_sigma_runs_on_meta():
    """Some callers hand sigma over as a Python float."""
    settings = SoftInpaintingSettings()
    a = torch.empty(1, 4, 8, 8, device=META)
    t = get_modified_nmask(settings, torch.empty(4, 8, 8, device=META), 3.0)
    assert latent_blend(settings, a, torch.empty_like(a), t).device == META


def test_timestep_conversion_runs_on_meta():
    """Timestep samplers convert the step's timestep to a noise level every step."""
    convert = getattr(blend_module, "timestep_to_sigma", None)
    if convert is None:
        pytest.skip("no timestep conversion in this core")
    alphas = torch.empty(1000, dtype=torch.float32, device=META)
    sigma = convert(torch.empty((), device=META), alphas)
    assert sigma.device == META
    t = get_modified_nmask(SoftInpaintingSettings(), torch.empty(4, 8, 8, device=META), sigma)
    assert t.device == META


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stage1_never_synchronises_cuda():
    """On CUDA, torch's sync debug mode turns any host synchronisation into an error."""
    device = torch.device("cuda")
    settings = SoftInpaintingSettings()
    a = torch.randn(2, 4, 64, 64, device=device)
    b = torch.randn_like(a)
    nmask = torch.rand(4, 64, 64, device=device)
    sigma = torch.full((2,), 2.5, device=device)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        latent_blend(settings, a, b, get_modified_nmask(settings, nmask, sigma[0]))
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    torch.cuda.synchronize()
