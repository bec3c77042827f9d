"""The histogram filter's working memory stays bounded: a few maps plus a few chunks, at any size.

Without chunking the filter would hold every pixel's 25 window keys, and the float64 intervals
built from them, for the whole map at once (measured: ~360 copies of a float32 map). The
chunks keep that to a fixed number of elements whatever the size; these tests measure the peak
of torch's CPU allocations while the filter runs, check the chunks it actually uses, and show
that the measurement would catch a filter that ignored its chunk budget.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import lib_soft_inpainting.histogram as histogram
from lib_soft_inpainting import get_gaussian_kernel, weighted_histogram_filter

KERNEL, CENTER = get_gaussian_kernel(1.5, 2)
TAPS = int((KERNEL > 0).sum())
KEY_BYTES = 8  # int64 keys and float64 intervals: the widest chunk temporaries


@pytest.fixture(autouse=True)
def no_kept_workspace():
    """Each measurement starts without the workspace the CPU filter keeps between calls (so its
    allocation is seen), and leaves none behind for other tests."""
    histogram.release_workspace()
    yield
    histogram.release_workspace()


def _kept_bytes() -> int:
    kept = histogram._kept_workspace
    return 0 if kept is None else sum(t.numel() * t.element_size() for t in vars(kept).values()
                                      if isinstance(t, torch.Tensor))


def _peak_torch_cpu_bytes(fn):
    """(peak bytes torch allocated on the CPU while ``fn`` ran, bytes still held after, its result).

    Replays the profiler's allocation records ("[memory]" events: +bytes on allocation, -bytes
    on free) in time order.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    try:
        events = [e for e in prof.profiler.kineto_results.events()
                  if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
        start = (lambda e: e.start_ns()) if events and hasattr(events[0], "start_ns") else (
            lambda e: e.start_us())
    except AttributeError:  # the profiler's raw records are not public API
        pytest.skip("this torch's profiler does not expose its allocation records")
    events.sort(key=start)
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak, live, result


def _bound(map_bytes: int, chunk_elements: int) -> int:
    """What the filter may hold: a few maps (padded keys, the float64 result, its float32 copy)
    plus a few chunk-sized temporaries."""
    return 12 * map_bytes + 10 * chunk_elements * KEY_BYTES


def _filter(maps: torch.Tensor) -> torch.Tensor:
    return weighted_histogram_filter(maps, KERNEL, CENTER, 0.25, 0.75, 1.0)


@pytest.fixture
def small_cpu_chunks(monkeypatch):
    chunk = 1 << 16
    monkeypatch.setattr(histogram, "_CPU_CHUNK_ELEMENTS", chunk)
    return chunk


@pytest.mark.parametrize("shape", [(1, 256, 256), (2, 96, 300)])
def test_peak_memory_is_a_few_maps_plus_a_few_chunks(shape, small_cpu_chunks):
    maps = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    map_bytes = maps.numel() * maps.element_size()
    peak, held, out = _peak_torch_cpu_bytes(lambda: _filter(maps))
    # The measurement is real: what stays allocated is exactly the result and the kept workspace,
    # which is bounded by the chunk budget too.
    kept = _kept_bytes()
    assert held == out.numel() * out.element_size() + kept
    assert 0 < kept <= 6 * 2 * small_cpu_chunks * KEY_BYTES
    assert peak >= small_cpu_chunks * KEY_BYTES // 2  # it saw at least one chunk of keys
    bound = _bound(map_bytes, small_cpu_chunks)
    assert peak <= bound, f"peak {peak / 2**20:.2f} MiB > bound {bound / 2**20:.2f} MiB"
    # ... far below the 25 copies of the map that one [taps, pixels] tensor alone would take.
    assert peak < TAPS * map_bytes


def test_the_measurement_catches_a_filter_that_does_not_chunk(monkeypatch):
    """Chunks larger than the map are one chunk: the bound above then fails by a wide margin."""
    maps = torch.rand((1, 256, 256), generator=torch.Generator().manual_seed(3))
    map_bytes = maps.numel() * maps.element_size()
    monkeypatch.setattr(histogram, "_CPU_CHUNK_ELEMENTS", 1 << 40)
    peak, _, _ = _peak_torch_cpu_bytes(lambda: _filter(maps))
    assert peak > 3 * _bound(map_bytes, 1 << 16)
    assert peak > 5 * TAPS * map_bytes  # several [taps, pixels] tensors at once


def test_chunking_does_not_change_the_result(small_cpu_chunks, monkeypatch):
    maps = torch.rand((2, 150, 130), generator=torch.Generator().manual_seed(4)) * 10
    maps[0, 40:60, 20:90] = 2.5  # ties across chunk borders
    chunked = _filter(maps)
    monkeypatch.setattr(histogram, "_CPU_CHUNK_ELEMENTS", 1 << 40)
    assert torch.equal(chunked, _filter(maps))


def _chunk_sizes(monkeypatch, maps: torch.Tensor) -> list[int]:
    """Elements of every chunk of window keys the filter builds for ``maps``."""
    sizes: list[int] = []
    original = histogram._filter_keys

    def recording(keys, *args, **kwargs):
        sizes.append(keys[:-1].numel())  # the last row is the sort's spare
        return original(keys, *args, **kwargs)

    monkeypatch.setattr(histogram, "_filter_keys", recording)
    _filter(maps)
    return sizes


@pytest.mark.parametrize("shape", [(4, 1024, 1024), (1, 9, 200_000)])
def test_a_large_map_is_filtered_in_chunks_within_budget(monkeypatch, shape):
    """On ``meta`` tensors (shapes only, no data) a map larger than one chunk is cut into chunks
    of at most the budget (or one image row of the batch, when a row alone is larger) that
    together cover every pixel's window exactly once."""
    maps = torch.empty(shape, device="meta")
    budget = histogram._chunk_elements(maps.device)
    one_row = shape[0] * shape[2] * TAPS
    sizes = _chunk_sizes(monkeypatch, maps)
    assert sum(sizes) == maps.numel() * TAPS
    assert max(sizes) <= max(budget, one_row)
    assert len(sizes) >= math.ceil(maps.numel() * TAPS / max(budget, one_row)) > 1


def test_cpu_chunks_are_small_and_bounded(monkeypatch):
    maps = torch.rand((2, 200, 300), generator=torch.Generator().manual_seed(5))
    sizes = _chunk_sizes(monkeypatch, maps)
    assert len(sizes) > 1
    assert max(sizes) <= histogram._CPU_CHUNK_ELEMENTS
    assert sum(sizes) == maps.numel() * TAPS


def test_a_second_call_allocates_no_chunk_buffers(small_cpu_chunks):
    """The CPU workspace is kept between calls: fresh pages cost more than the arithmetic done in
    them, so the next call of a steady stream allocates only map-sized tensors."""
    maps = torch.rand((1, 64, 64), generator=torch.Generator().manual_seed(6))
    map_bytes = maps.numel() * maps.element_size()
    first, _, _ = _peak_torch_cpu_bytes(lambda: _filter(maps))
    second, _, _ = _peak_torch_cpu_bytes(lambda: _filter(maps))
    assert first > 4 * small_cpu_chunks * KEY_BYTES  # the first call made the workspace
    assert second < 16 * map_bytes < small_cpu_chunks * KEY_BYTES  # a few maps and pixel rows
    histogram.release_workspace()
    third, _, _ = _peak_torch_cpu_bytes(lambda: _filter(maps))
    assert third > 4 * small_cpu_chunks * KEY_BYTES  # released: made again
