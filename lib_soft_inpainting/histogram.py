"""The weighted histogram filter and its Gaussian kernel (SPEC §6 step 4, §7).

For every pixel the neighbours under the kernel window, clipped to the image (positions outside
the image do not exist: they are not zeros), are sorted by value; their kernel weights are
stacked into consecutive intervals on ``[0, S]``; the output is the overlap-weighted mean of the
values whose intervals meet the window ``[S·pmin, S·pmax]`` (widened to ``min_width`` first).

Vectorised over all pixels and the batch: every pixel's window is gathered as int64 keys (a
value's order-preserving bits with the tap's weight, as a fixed-point integer, below them; all
taps in one op over strided views of the padded map), sorted along the (short) tap axis, and
the interval arithmetic runs on whole tensors, in row chunks that bound memory at any size. The
sort is a compare-exchange network over whole rows of keys, so each pixel's weights travel with
its values without a gather. Values are compared and averaged at float32 precision; sums
accumulate in float64 like upstream's Python floats (the weights' integers exactly), except on
devices without float64 (MPS), where float32 is used. On the CPU the chunk buffers are kept for
the next call (page faults in fresh buffers cost more than the arithmetic), and what depends
only on the kernel, the map size and the window is worked out once on the host and cached.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["accumulate_dtype_for", "get_gaussian_kernel", "release_workspace", "weighted_histogram_filter"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

# Window keys (taps × pixels) per chunk (at least one image row of the batch); a chunk's buffers
# (reused by every chunk) have about this many elements each, so the working memory is bounded
# whatever the image size. On the CPU ~20k pixels of 25 taps are one chunk for a 128² latent map
# and as fast as smaller chunks at 512² (measured; 4M was 3× slower there); accelerators want big
# kernels: 4M elements (~250 MiB of buffers) per chunk there.
_CPU_CHUNK_ELEMENTS = 1 << 19
_CHUNK_ELEMENTS = 1 << 22


def _chunk_elements(device: torch.device) -> int:
    """Window keys per chunk on ``device`` (see ``_CPU_CHUNK_ELEMENTS``)."""
    return _CPU_CHUNK_ELEMENTS if device.type == "cpu" else _CHUNK_ELEMENTS


def get_gaussian_kernel(stddev_radius: float = 1.0, max_radius: int = 2) -> tuple[np.ndarray, int]:
    """A ``(2r+1)²`` Gaussian kernel that falls to exactly 0 at radius ``r + 1``, and its centre.

    ``g(q) = exp(−q / σ²)`` for squared distance ``q`` (σ², not 2σ², as upstream), rescaled so the
    centre is 1 and ``g((r+1)²)`` maps to 0, negatives clipped. Returns (float64 array, ``r``).
    """
    radius = int(max_radius)
    if radius < 0:
        raise ValueError(f"max_radius must be >= 0, got {max_radius}")
    if not stddev_radius > 0:
        raise ValueError(f"stddev_radius must be > 0, got {stddev_radius}")
    inv_var = 1.0 / (float(stddev_radius) ** 2)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    g_zero = np.exp(-((radius + 1.0) ** 2) * inv_var)
    kernel = (np.exp(-squared * inv_var) - g_zero) / (1.0 - g_zero)
    return np.maximum(kernel, 0.0), radius


def float64_supported(device: torch.device) -> bool:
    """Whether float64 arithmetic exists on ``device`` (not on Apple's MPS)."""
    return device.type != "mps"


def accumulate_dtype_for(device: torch.device) -> torch.dtype:
    """float64 where the device has it (matches upstream's sums), float32 elsewhere."""
    return torch.float64 if float64_supported(device) else torch.float32


def _center_of(kernel_center: int | Sequence[int] | np.ndarray | torch.Tensor) -> tuple[int, int]:
    """Upstream passes a plain int (used for both axes) although its docstring says array."""
    c = np.asarray(kernel_center.cpu() if isinstance(kernel_center, torch.Tensor) else kernel_center)
    if c.ndim == 0:
        return int(c), int(c)
    if c.shape != (2,):
        raise ValueError(f"kernel_center must be an int or two ints, got {kernel_center!r}")
    return int(c[0]), int(c[1])


def _is_narrow(total: float, pmin: float, pmax: float, min_width: float) -> bool:
    """Whether the window ``[S·pmin, S·pmax]`` is narrower than ``min_width`` (SPEC §7)."""
    return total * pmax - total * pmin < min_width


def _window_bounds(total: torch.Tensor, pmin: float, pmax: float, min_width: float,
                   narrow: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight window ``[S·pmin, S·pmax]``, widened to ``min_width`` (SPEC §7 order of clamps).

    Widened, it is centred, then moved to end at ``S`` if it ends past it, then to start at 0 if
    it starts below it: its start is ``max(0, min(centre − min_width/2, S − min_width))``.
    ``narrow`` says whether every pixel's window is widened (True), none is (False), or it varies
    (None: chosen per pixel).
    """
    lo, hi = total * pmin, total * pmax
    if narrow is False:
        return lo, hi
    centre = (lo + hi) / 2
    wlo = torch.minimum(centre.sub_(min_width / 2), total - min_width).clamp_min_(0)
    whi = wlo + min_width
    if narrow:
        return wlo, whi
    widen = (hi - lo) < min_width
    return torch.where(widen, wlo, lo), torch.where(widen, whi, hi)


def _clipped_weight_totals(weights: np.ndarray, center: tuple[int, int], height: int, width: int
                           ) -> list[int]:
    """Every distinct total weight ``S`` a pixel of an ``height × width`` map can have.

    Near the borders part of the window lies outside the image; which part depends only on how
    close the pixel is to each border, so a few row and column classes cover every pixel.
    ``weights`` are the (integer) weights of the whole kernel grid.
    """
    (kh, kw), (cy, cx) = weights.shape, center
    table = np.zeros((kh + 1, kw + 1), dtype=np.int64)  # 2-D prefix sums: any block in O(1)
    table[1:, 1:] = weights.cumsum(0).cumsum(1)

    def spans(size: int, taps: int, c: int) -> set[tuple[int, int]]:
        pos = np.arange(size)
        first = np.maximum(0, c - pos)
        last = np.minimum(taps - 1, size - 1 - pos + c) + 1
        return set(zip(first.tolist(), last.tolist(), strict=True))

    columns = spans(width, kw, cx)
    return [int(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0])
            for y0, y1 in spans(height, kh, cy) for x0, x1 in columns]


def _narrowness(totals: list[int], pmin: float, pmax: float, min_width: float) -> bool | None:
    """True if every window is widened, False if none is, None if it depends on the pixel."""
    narrow = {_is_narrow(float(total), pmin, pmax, min_width) for total in totals}
    return narrow.pop() if len(narrow) == 1 else None


# A window key is an int64: a value's 32 order bits in the high word above its tap's weight, a
# fixed-point integer of at most ``_WEIGHT_ONE`` (the kernel's largest weight), in the low word.
# Sorting keys sorts values and carries each weight along: no gather, no tap ids.
_WEIGHT_ONE = (1 << 31) - 1
_VALUE_SHIFT = 32
_LOW_WORD_ONES = (1 << 32) - 1
_HIGH_WORD_ONES = -(1 << 32)  # int64 with the high word all ones, the low word zero
# On a little-endian machine the low word of an int64 is the first int32 of its two: reading a
# word through a view costs nothing.
_LOW_WORD = 0 if sys.byteorder == "little" else 1
_HIGH_WORD = 1 - _LOW_WORD


@functools.cache
def sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i < j) of Batcher's odd-even merge sort for ``n`` inputs.

    Built for the next power of two and pruned: a comparator that touches a padding position
    (index >= n, conceptually +inf) never moves anything, so dropping it is exact.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    lo, hi = i + j, i + j + k
                    if lo // (2 * p) == hi // (2 * p) and hi < n:
                        pairs.append((lo, hi))
            k //= 2
        p *= 2
    return tuple(pairs)


def _sortable_bits(values: torch.Tensor) -> torch.Tensor:
    """float32 -> int32 whose integer order is the float order (negatives' magnitude bits flipped)."""
    bits = values.view(torch.int32)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _quantized_weights(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Positive weights as integers (the largest is ``_WEIGHT_ONE``) and the integers per unit.

    31 bits keep every weight to 5e-10 of the largest; the running sums of the integers are then
    exact in float64, so the intervals tile ``[0, S]`` without rounding gaps.
    """
    units = _WEIGHT_ONE / float(weights.max())
    return np.rint(weights * units).astype(np.int64), units


def _sort_rows_in_place(rows: list[torch.Tensor], spare: torch.Tensor | None = None) -> None:
    """Sort int64 keys across equally shaped ``rows`` with a compare-exchange network.

    Each comparator is a min and a max of two whole rows, which beats ``torch.sort`` along a
    short axis. Both are written into existing buffers (the min into a spare one, given or made,
    that then swaps places with the row it replaces), so the network allocates nothing.
    ``rows`` is reordered as a list; the tensors it ends up holding are the sorted rows.
    """
    spare = torch.empty_like(rows[0]) if spare is None else spare
    for i, j in sorting_network(len(rows)):
        low, high = rows[i], rows[j]
        torch.minimum(low, high, out=spare)
        torch.maximum(low, high, out=high)
        rows[i], spare = spare, low


class _Workspace:
    """Flat buffers that the chunks of a filter call carve their ``[taps, pixels]`` tensors from.

    Fresh multi-MiB temporaries are fresh pages on the CPU, and faulting them in cost more than
    all the arithmetic done in them (measured: half of a call's time), so chunks write into these
    instead, and on the CPU one workspace is kept for the next call (see ``_workspace``).
    """

    def __init__(self, elements: int, acc: torch.dtype, device: torch.device) -> None:
        self.elements, self.acc, self.device = elements, acc, device
        self._keys = torch.empty(elements, dtype=torch.int64, device=device)
        self._sorted = torch.empty(elements, dtype=torch.int64, device=device)
        self._bounds = torch.empty(elements, dtype=acc, device=device)
        self._overlap = torch.empty(elements, dtype=acc, device=device)
        self._values = torch.empty(elements, dtype=acc, device=device)
        self._flips = torch.empty(elements, dtype=torch.int32, device=device)

    def fits(self, elements: int, acc: torch.dtype, device: torch.device) -> bool:
        return elements <= self.elements and acc == self.acc and device == self.device

    def keys(self, n: int, m: int) -> torch.Tensor:
        """``[n + 1, m]`` keys: ``n`` rows of window keys and the sort's spare row."""
        return self._keys[:(n + 1) * m].view(n + 1, m)

    def sorted(self, n: int, m: int) -> torch.Tensor:
        return self._sorted[:n * m].view(n, m)

    def bounds(self, n: int, m: int) -> torch.Tensor:
        return self._bounds[:(n + 1) * m].view(n + 1, m)

    def overlap(self, n: int, m: int) -> torch.Tensor:
        return self._overlap[:n * m].view(n, m)

    def values(self, n: int, m: int) -> torch.Tensor:
        return self._values[:n * m].view(n, m)

    def flips(self, n: int, m: int) -> torch.Tensor:
        return self._flips[:n * m].view(n, m)


_kept_workspace: _Workspace | None = None
_kept_lock = threading.Lock()


@contextlib.contextmanager
def _workspace(elements: int, acc: torch.dtype, device: torch.device) -> Iterator[_Workspace]:
    """A workspace of at least ``elements`` per buffer, lent for one filter call.

    On the CPU one workspace (15 MiB for a 128² map, never over 40 MiB) is kept between calls,
    so a steady stream of jobs touches no fresh pages; a call made while another holds it
    (another thread) gets its own. Every element a chunk reads, it has written first, so nothing
    of one call reaches the next. Other devices have caching allocators: a fresh one each call.
    """
    global _kept_workspace
    keep = device.type == "cpu" and elements <= 2 * _CPU_CHUNK_ELEMENTS and _kept_lock.acquire(blocking=False)
    if not keep:
        yield _Workspace(elements, acc, device)
        return
    try:
        kept = _kept_workspace
        if kept is None or not kept.fits(elements, acc, device):
            _kept_workspace = None  # let the old one go before the new one is made
            kept = _Workspace(elements, acc, device)
            _kept_workspace = kept
        yield kept
    finally:
        _kept_lock.release()


def release_workspace() -> None:
    """Free the workspace kept between CPU filter calls (the next call makes a new one)."""
    global _kept_workspace
    with _kept_lock:
        _kept_workspace = None


def _filter_keys(keys: torch.Tensor, units: float, pmin: float, pmax: float, min_width: float,
                 work: _Workspace, *, non_negative: bool = False, finite: bool = False,
                 narrow: bool | None = None) -> torch.Tensor:
    """The filter for ``[N + 1, M]`` keys (N taps of M pixels, then a spare row) -> ``[M]``.

    ``units`` is the weight integers per unit of weight. ``non_negative`` says every value's
    order bits are its float bits (no sign flip to undo); ``finite`` that no ±inf or NaN needs
    masking; ``narrow`` is passed to :func:`_window_bounds`. ``keys`` is consumed; the result is
    in ``work``'s accumulation dtype.
    """
    n, m = keys.shape[0] - 1, keys.shape[1]
    rows = list(keys[:n].unbind(0))
    _sort_rows_in_place(rows, keys[n])

    # bounds[k] is the running weight before the k-th smallest value, bounds[k + 1] after it
    # (sums of integers below 2**53: exact; a loop of row adds, as ``cumsum`` along the short
    # axis is 4× slower on the CPU). Both words of a key are read through views.
    keys = torch.stack(rows, 0, out=work.sorted(n, m))
    words = keys.view(torch.int32).view(n, m, 2)
    weights, order_bits = words[..., _LOW_WORD], words[..., _HIGH_WORD]
    bounds, values = work.bounds(n, m), work.values(n, m)
    bounds[0] = 0
    bounds[1:].copy_(weights)
    for k in range(1, n):
        bounds[k + 1].add_(bounds[k])
    if non_negative:
        values.copy_(order_bits.view(torch.float32))
    else:
        flipped = torch.bitwise_right_shift(order_bits, 31, out=work.flips(n, m))
        values.copy_(flipped.bitwise_and_(0x7FFFFFFF).bitwise_xor_(order_bits).view(torch.float32))
    wlo, whi = _window_bounds(bounds[n], pmin, pmax, min_width * units, narrow)
    # An interval [a, b] overlaps the window [lo, hi] by clamp(b) − clamp(a): clamping every
    # bound once gives each overlap in one subtraction, and their sum in one more.
    torch.clamp(bounds, wlo, whi, out=bounds)
    overlap = torch.sub(bounds[1:], bounds[:-1], out=work.overlap(n, m))
    weight_sum = bounds[n] - bounds[0]
    weighted = values.mul_(overlap)
    if not finite:  # a value whose interval misses the window adds nothing, even ±inf (no inf·0)
        weighted.masked_fill_(overlap == 0, 0)
    # Nothing overlaps -> the value sum is 0 too, and 0 / tiny is the specified 0.
    return weighted.sum(0).div_(weight_sum.clamp_min_(torch.finfo(weight_sum.dtype).tiny))


def _value_flags(maps: torch.Tensor) -> tuple[bool, bool]:
    """(all values >= 0 or -0, all values finite): each lets the filter skip work."""
    if maps.device.type == "meta" or maps.numel() == 0:
        return False, False
    low, high = torch.stack(torch.aminmax(maps)).tolist()  # one sync; NaN anywhere makes both NaN
    return low >= 0, math.isfinite(low) and math.isfinite(high)


class _Plan(NamedTuple):
    """What a filter call needs to know about its kernel, window and map size (host only)."""

    taps: int
    offsets: tuple[tuple[int, int], ...]  # (row, column) of each tap with a weight > 0
    masks: tuple[int, ...]                # each such tap's weight below an all-ones high word
    units: float                          # weight integers per unit of weight
    narrow: bool | None                   # see _window_bounds


@functools.lru_cache(maxsize=64)
def _plan(kernel_bytes: bytes, kh: int, kw: int, center: tuple[int, int], h: int, w: int,
          pmin: float, pmax: float, min_width: float, exact_sums: bool) -> _Plan:
    """The host-side part of a call, cached: a stream of same-sized jobs repeats it exactly."""
    kernel = np.frombuffer(kernel_bytes, dtype=np.float64).reshape(kh, kw)
    # Zero-weight taps have empty intervals: skipping them is exact.
    taps = np.flatnonzero(kernel.reshape(-1) > 0)
    if taps.size == 0:
        return _Plan(0, (), (), 1.0, None)
    quantized, units = _quantized_weights(kernel.reshape(-1)[taps])
    narrow = None  # float64 sums of the integer weights are exact: then the host knows every total
    if exact_sums:
        grid = np.zeros(kh * kw, dtype=np.int64)
        grid[taps] = quantized
        narrow = _narrowness(_clipped_weight_totals(grid.reshape(kh, kw), center, h, w), pmin, pmax,
                             min_width * units)
    return _Plan(int(taps.size), tuple(divmod(int(t), kw) for t in taps),
                 tuple(_HIGH_WORD_ONES | int(q) for q in quantized), units, narrow)


def _filter_maps(maps: torch.Tensor, kernel: np.ndarray, center: tuple[int, int],
                 pmin: float, pmax: float, min_width: float, acc: torch.dtype) -> torch.Tensor:
    """The filter on ``[B, H, W]`` float32 maps with a float64 numpy kernel -> ``acc``-typed [B, H, W].

    The padded batch is turned into keys once (value bits above an all-ones low word inside the
    image, all zeros outside); a tap's window keys are then one strided ``bitwise_and`` with the
    tap's weight below an all-ones high word, which leaves the outside with weight 0. Peak
    memory: the padded keys (two maps' worth of bytes), the result, and one workspace of
    ``_CHUNK_ELEMENTS``-sized buffers.
    """
    b, h, w = maps.shape
    kh, kw = kernel.shape
    cy, cx = center
    if not (0 <= cy < kh and 0 <= cx < kw):
        raise ValueError(f"kernel_center {center} lies outside the kernel of shape {(kh, kw)}")
    out = torch.zeros((b, h, w), dtype=acc, device=maps.device)
    if b == 0 or h == 0 or w == 0:
        return out
    plan = _plan(kernel.tobytes(), kh, kw, center, h, w, pmin, pmax, min_width, acc == torch.float64)
    if plan.taps == 0:
        return out
    n, units, narrow = plan.taps, plan.units, plan.narrow
    non_negative, finite = _value_flags(maps)

    pad = (cx, kw - 1 - cx, cy, kh - 1 - cy)
    bits = maps.view(torch.int32) if non_negative else _sortable_bits(maps)
    inside = bits.to(torch.int64).bitwise_left_shift_(_VALUE_SHIFT).bitwise_or_(_LOW_WORD_ONES)
    padded_keys = F.pad(inside, pad, value=0)
    every_tap = n == kh * kw
    masks = plan.masks if not every_tap else torch.tensor(plan.masks, dtype=torch.int64,
                                                          device=maps.device).view(kh, kw, 1, 1, 1)
    ph, pw = padded_keys.shape[1:]
    tap_strides = (pw, 1, ph * pw, pw, 1)  # (tap row, tap column, item, row, column)

    rows = max(1, min(h, _chunk_elements(maps.device) // max(1, b * w * n)))
    chunk_pixels = b * rows * w
    with _workspace((n + 1) * chunk_pixels, acc, maps.device) as work:
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            keys = work.keys(n, b * (r1 - r0) * w)
            if every_tap:  # all taps in one op: a strided view of the padded keys per tap
                windows = padded_keys.as_strided((kh, kw, b, r1 - r0, w), tap_strides,
                                                 padded_keys.storage_offset() + r0 * pw)
                torch.bitwise_and(windows, masks, out=keys[:n].view(kh, kw, b, r1 - r0, w))
            else:
                for k, (ty, tx) in enumerate(plan.offsets):
                    torch.bitwise_and(padded_keys[:, r0 + ty:r1 + ty, tx:tx + w], masks[k],
                                      out=keys[k].view(b, r1 - r0, w))
            out[:, r0:r1] = _filter_keys(keys, units, pmin, pmax, min_width, work, non_negative=non_negative,
                                         finite=finite, narrow=narrow).view(b, r1 - r0, w)
    return out


def weighted_histogram_filter(img: ArrayT, kernel: np.ndarray | torch.Tensor,
                              kernel_center: int | Sequence[int] | np.ndarray,
                              percentile_min: float = 0.0, percentile_max: float = 1.0,
                              min_width: float = 1.0, *,
                              accumulate_dtype: torch.dtype | None = None) -> ArrayT:
    """Weighted-percentile filter (SPEC §7): (0, 1) weighted mean, (0.5, 0.5) median, (1, 1) max.

    ``img`` is a numpy array or a torch tensor, ``[H, W]`` or a batch ``[B, H, W]`` (each map
    filtered on its own, in one call); the result has the input's type, dtype, shape and device.
    ``kernel_center`` is an int (both axes) or a (row, column) pair. ``accumulate_dtype`` forces
    the dtype of the sums (default: float64 where the device supports it).
    """
    is_numpy = isinstance(img, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(img)) if is_numpy else img
    if tensor.dim() not in (2, 3):
        raise ValueError(f"weighted_histogram_filter takes [H, W] or [B, H, W] maps, got shape "
                         f"{tuple(tensor.shape)}")
    acc = accumulate_dtype or accumulate_dtype_for(tensor.device)
    # Values are ordered and averaged at float32 precision (upstream filters float32 maps).
    maps = tensor.to(torch.float32)
    # The kernel is tiny: read it on the host once, so choosing taps never syncs a device.
    host_kernel = kernel.detach().cpu() if isinstance(kernel, torch.Tensor) else kernel
    kernel_np = np.asarray(host_kernel, dtype=np.float64)
    if kernel_np.ndim != 2:
        raise ValueError(f"the kernel must be 2-D, got shape {kernel_np.shape}")
    if not np.isfinite(kernel_np).all():
        raise ValueError("the kernel's weights must be finite numbers "
                         "(weights <= 0 are taps that do not count)")
    window = float(percentile_min), float(percentile_max), float(min_width)
    if not all(math.isfinite(v) for v in window):
        raise ValueError(f"percentile_min, percentile_max and min_width must be finite numbers, got {window}")
    squeeze = maps.dim() == 2
    out = _filter_maps(maps[None] if squeeze else maps, kernel_np, _center_of(kernel_center), *window, acc)
    out = out[0] if squeeze else out
    out = out.to(tensor.dtype)
    return out.numpy() if is_numpy else out
