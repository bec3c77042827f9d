"""The weighted histogram filter and its Gaussian kernel (SPEC §6 step 4, §7).

For every pixel the neighbours under the kernel window, clipped to the image (positions outside
the image do not exist: they are not zeros), are sorted by value; their kernel weights are
stacked into consecutive intervals on ``[0, S]``; the output is the overlap-weighted mean of the
values whose intervals meet the window ``[S·pmin, S·pmax]`` (widened to ``min_width`` first).

Vectorised over all pixels and the batch: every pixel's window is gathered as int64 keys (a
value's order-preserving bits with its tap index below them, one strided view of the padded
map per tap), sorted along the (short) tap axis, and the interval arithmetic runs on whole
tensors, in row chunks that bound memory at any size. The sort is a compare-exchange network
over whole rows of keys, so each pixel's weights travel with its values without a gather.
Values are compared and averaged at float32 precision; sums accumulate in float64 like
upstream's Python floats, except on devices without float64 (MPS), where float32 is used.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["accumulate_dtype_for", "get_gaussian_kernel", "weighted_histogram_filter"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

# Window keys (taps × pixels) per chunk (at least one image row of the batch); a chunk's ~7
# buffers (reused by every chunk) have this many 8-byte elements, so the working memory is bounded
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


def _window_bounds(total: torch.Tensor, pmin: float, pmax: float, min_width: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight window ``[S·pmin, S·pmax]``, widened to ``min_width`` (SPEC §7 order of clamps)."""
    lo, hi = total * pmin, total * pmax
    narrow = (hi - lo) < min_width
    centre = (lo + hi) / 2
    wlo, whi = centre - min_width / 2, centre + min_width / 2
    past_end = whi > total
    wlo, whi = torch.where(past_end, total - min_width, wlo), torch.where(past_end, total, whi)
    before_start = wlo < 0
    wlo = torch.where(before_start, torch.zeros_like(wlo), wlo)
    whi = torch.where(before_start, torch.full_like(whi, min_width), whi)
    return torch.where(narrow, wlo, lo), torch.where(narrow, whi, hi)


_MAX_ID_BITS = 31  # a key is the value's 32 order bits in its high word above the tap index
_VALUE_SHIFT = 32  # the value's bits fill a key's high 32-bit word, the tap index its low word
# On a little-endian machine the high word of an int64 is the second int32 of its two: reading
# it through a view saves a shift over the whole chunk.
_HIGH_WORD = 1 if sys.byteorder == "little" else 0


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


def _float_from_sortable(bits: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_sortable_bits` (the flip is its own inverse)."""
    return _sortable_bits(bits.view(torch.float32)).view(torch.float32)


def _sort_rows_in_place(rows: list[torch.Tensor], spare: torch.Tensor | None = None) -> None:
    """Sort int64 keys across equally shaped ``rows`` with a compare-exchange network.

    Each comparator is a min and a max of two whole rows, which beats ``torch.sort`` along a
    short axis. Both are written into existing buffers (the min into a spare one, given or made,
    that then swaps places with the row it replaces), so the network allocates nothing: on the
    CPU a fresh buffer per comparator costs more in page faults than the comparison itself.
    ``rows`` is reordered as a list; the tensors it ends up holding are the sorted rows.
    """
    spare = torch.empty_like(rows[0]) if spare is None else spare
    for i, j in sorting_network(len(rows)):
        low, high = rows[i], rows[j]
        torch.minimum(low, high, out=spare)
        torch.maximum(low, high, out=high)
        rows[i], spare = spare, low


class _Workspace:
    """Chunk-sized buffers that every chunk of one filter call reuses.

    Fresh multi-MiB temporaries are fresh pages on the CPU: faulting them in cost more than the
    arithmetic done in them (3× per op, measured), so each chunk writes into these instead.
    """

    def __init__(self, n: int, m: int, acc: torch.dtype, device: torch.device) -> None:
        self.spare = torch.empty(m, dtype=torch.int64, device=device)
        self.sorted = torch.empty((n, m), dtype=torch.int64, device=device)
        self.ids = torch.empty((n, m), dtype=torch.int64, device=device)
        self.bounds = torch.empty((n + 1, m), dtype=acc, device=device)
        self.values = torch.empty((n, m), dtype=acc, device=device)
        self.scratch = torch.empty((n, m), dtype=acc, device=device)
        self.missed = torch.empty((n, m), dtype=torch.bool, device=device)


def _filter_keys(keys: torch.Tensor, weight_table: torch.Tensor, id_bits: int, pmin: float, pmax: float,
                 min_width: float, acc: torch.dtype, work: _Workspace | None = None) -> torch.Tensor:
    """The filter for ``[N, M]`` window keys (N taps of M pixels) -> ``[M]`` in ``acc``.

    A key is a value's order bits in its high 32-bit word above a low word naming its tap (its
    low ``id_bits`` bits all ones: outside the image); ``weight_table`` maps a tap id to its
    weight (0 for "outside"). ``keys`` is consumed; ``work`` (made if not given) holds at least M
    columns.
    """
    n, m = keys.shape
    work = _Workspace(n, m, acc, keys.device) if work is None else work
    rows = list(keys.unbind(0))
    _sort_rows_in_place(rows, work.spare[:m])
    keys = torch.stack(rows, 0, out=work.sorted[:, :m])
    # Sorting keys sorted the values and carried each tap's id along: both come back from the
    # key without a gather of the windows.
    ids = torch.bitwise_and(keys, (1 << id_bits) - 1, out=work.ids[:, :m])
    # bounds[k] is the running weight before the k-th smallest value, bounds[k + 1] after it
    # (a loop of adds into one buffer: faster than cumsum along the short axis on the CPU).
    weights = torch.take(weight_table, ids, out=work.scratch[:, :m])
    bounds = work.bounds[:, :m]
    bounds[0] = 0
    for k in range(n):
        torch.add(bounds[k], weights[k], out=bounds[k + 1])
    # The value's order bits back to the float (the flip is its own inverse), in ids' buffer.
    high = keys.view(torch.int32).view(n, m, 2)[..., _HIGH_WORD]
    flip = ids.view(torch.int32)[:, :m]
    torch.bitwise_right_shift(high, 31, out=flip).bitwise_and_(0x7FFFFFFF).bitwise_xor_(high)
    values = work.values[:, :m]
    values.copy_(flip.view(torch.float32))

    wlo, whi = _window_bounds(bounds[n:], pmin, pmax, min_width)
    overlap = torch.minimum(bounds[1:], whi, out=work.scratch[:, :m])
    overlap.sub_(torch.maximum(bounds[:-1], wlo, out=bounds[:-1])).clamp_min_(0)
    # A value whose interval misses the window adds nothing, even if it is ±inf (no inf * 0).
    missed = torch.eq(overlap, 0, out=work.missed[:, :m])
    value_sum = values.mul_(overlap).masked_fill_(missed, 0).sum(0)
    weight_sum = overlap.sum(0)
    return torch.where(weight_sum > 0, value_sum / torch.where(weight_sum > 0, weight_sum, 1), 0)


def _filter_maps(maps: torch.Tensor, kernel: np.ndarray, center: tuple[int, int],
                 pmin: float, pmax: float, min_width: float, acc: torch.dtype) -> torch.Tensor:
    """The filter on ``[B, H, W]`` float32 maps with a float64 numpy kernel -> ``acc``-typed [B, H, W].

    The whole padded batch is turned into keys once (value bits above an empty id field, or
    above the all-ones "outside" id where the padding lies); a chunk's window keys are then one
    strided ``bitwise_or`` per tap, which leaves "outside" untouched. Peak memory: the padded
    keys (two maps' worth of bytes), the result, and a few chunks of ``_CHUNK_ELEMENTS``.
    """
    b, h, w = maps.shape
    kh, kw = kernel.shape
    cy, cx = center
    if not (0 <= cy < kh and 0 <= cx < kw):
        raise ValueError(f"kernel_center {center} lies outside the kernel of shape {(kh, kw)}")
    out = torch.zeros((b, h, w), dtype=acc, device=maps.device)
    # Zero-weight taps have empty intervals: skipping them is exact.
    taps = np.flatnonzero(kernel.reshape(-1) > 0)
    n = int(taps.size)
    if b == 0 or h == 0 or w == 0 or n == 0:
        return out
    if n >= 1 << _MAX_ID_BITS:
        raise ValueError(f"the kernel has {n} non-zero taps; at most {(1 << _MAX_ID_BITS) - 1} are supported")
    id_bits = n.bit_length()
    outside = (1 << id_bits) - 1  # > every tap id, and unchanged by OR-ing one in
    host_dtype = np.float64 if acc == torch.float64 else np.float32
    table = np.zeros(outside + 1, dtype=host_dtype)
    table[:n] = kernel.reshape(-1)[taps]
    weight_table = torch.as_tensor(table, device=maps.device)

    pad = (cx, kw - 1 - cx, cy, kh - 1 - cy)
    padded_keys = _sortable_bits(F.pad(maps, pad)).to(torch.int64).bitwise_left_shift_(_VALUE_SHIFT)
    padded_keys |= F.pad(torch.zeros((1, h, w), dtype=torch.int64, device=maps.device), pad, value=outside)
    offsets = [divmod(int(t), kw) for t in taps]

    rows = max(1, min(h, _chunk_elements(maps.device) // max(1, b * w * n)))
    chunk = torch.empty((n, b * rows * w), dtype=torch.int64, device=maps.device)
    work = _Workspace(n, b * rows * w, acc, maps.device)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        keys = chunk[:, :b * (r1 - r0) * w]
        for k, (ty, tx) in enumerate(offsets):
            torch.bitwise_or(padded_keys[:, r0 + ty:r1 + ty, tx:tx + w], k, out=keys[k].view(b, r1 - r0, w))
        out[:, r0:r1] = _filter_keys(keys, weight_table, id_bits, pmin, pmax, min_width,
                                     acc, work).view(b, r1 - r0, w)
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
    squeeze = maps.dim() == 2
    out = _filter_maps(maps[None] if squeeze else maps, kernel_np, _center_of(kernel_center),
                       float(percentile_min), float(percentile_max), float(min_width), acc)
    out = out[0] if squeeze else out
    out = out.to(tensor.dtype)
    return out.numpy() if is_numpy else out
