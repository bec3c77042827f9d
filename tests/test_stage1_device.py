"""Stage 1 stays on the device, and the filter's working memory stays bounded.

The per-step path (``get_modified_nmask`` + ``latent_blend``) runs once per sampler step on the
host's device; a single ``.item()``, CPU copy or data-dependent branch there would stall a GPU
every step. Tensors on the ``meta`` device have shapes and dtypes but no data, so any such access
raises: running the whole path on ``meta`` proves there is none.
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import lib_soft_inpainting.histogram as histogram
from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    weighted_histogram_filter,
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


# ---------------------------------------------------------------- the filter's working memory


def _peak_torch_cpu_bytes(fn):
    """(peak bytes allocated by torch on the CPU while ``fn`` runs, bytes still held after, result).

    Read from the profiler's allocation records, replayed in order.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    records = [e for e in prof.profiler.kineto_results.events()
               if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    records.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for record in records:
        live += record.nbytes()
        peak = max(peak, live)
    return peak, live, result


def test_filter_memory_is_bounded_by_its_chunks(monkeypatch):
    """With small chunks the filter holds a few maps plus a few chunks, not 25 copies per pixel
    of the whole map at once (which is what an unchunked filter needs: several hundred maps).
    """
    size = 256
    maps = torch.rand(1, size, size, generator=torch.Generator().manual_seed(3))
    map_bytes = maps.numel() * maps.element_size()
    kernel, center = get_gaussian_kernel(1.5, 2)
    expected = weighted_histogram_filter(maps, kernel, center, 0.25, 0.75, 1.0)

    chunk = 1 << 14
    monkeypatch.setattr(histogram, "_CHUNK_ELEMENTS", chunk)
    peak, held, out = _peak_torch_cpu_bytes(
        lambda: weighted_histogram_filter(maps, kernel, center, 0.25, 0.75, 1.0))

    # The measurement is real: the result is what stays allocated.
    assert held == out.numel() * out.element_size()
    assert peak >= held
    # Chunking does not change the result.
    assert torch.equal(out, expected)
    # Bounded: at most 4 × 25 copies of the map, plus 16 int64 chunks of work.
    bound = 4 * 25 * map_bytes + 16 * chunk * 8
    assert peak <= bound, f"peak {peak / 2**20:.1f} MiB > bound {bound / 2**20:.1f} MiB"
