"""Wall-clock timing with the device synchronised, reported as a median over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

__all__ = ["Timing", "measure", "measure_together", "synchronizer"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median (reported) and the best (for the CSV), over ``repeats`` calls."""

    median: float
    best: float
    repeats: int


def synchronizer(device: torch.device | str) -> Callable[[], None]:
    """A function that waits until ``device`` has finished its queued work (a no-op on the CPU).

    CUDA kernels run asynchronously: without this a timing would only measure the launch.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def measure_together(fns: Mapping[str, Callable[[], object]], device: torch.device | str = "cpu", *,
                     budget_s: float = 1.0, min_repeats: int = 3, max_repeats: int = 200,
                     warmup: int = 1, max_calls_per_slot: int = 100) -> dict[str, Timing]:
    """Time several calls in rounds (one slot of each per round) so that a burst of load from
    elsewhere on the machine hits all of them alike and their ratios stay meaningful.

    Each is called ``warmup`` times untimed first; the last of those sets how many calls fill
    its slot of a round (about ``budget_s / 20`` of calls, at most ``max_calls_per_slot``), so a
    call 100× faster than its neighbour gets more samples instead of a median of three. Rounds
    then run until the calls have used ``budget_s`` each on average (at least ``min_repeats``,
    at most ``max_repeats`` rounds). Every call is timed on its own, with the device synchronised
    after it; results are dropped before the next call, so memory does not pile up.
    """
    sync = synchronizer(device)
    slot_s = budget_s / 20
    per_slot: dict[str, int] = {}
    for name, fn in fns.items():
        elapsed = 0.0
        for _ in range(warmup):
            start = time.perf_counter()
            fn()
            sync()
            elapsed = time.perf_counter() - start
        per_slot[name] = max(1, min(max_calls_per_slot, int(slot_s / elapsed) if elapsed > 0 else 1))
    times: dict[str, list[float]] = {name: [] for name in fns}
    spent = 0.0
    rounds = 0
    while rounds < max(1, min_repeats) or (spent < budget_s * len(fns) and rounds < max_repeats):
        for name, fn in fns.items():
            for _ in range(per_slot[name]):
                start = time.perf_counter()
                fn()
                sync()
                elapsed = time.perf_counter() - start
                times[name].append(elapsed)
                spent += elapsed
        rounds += 1
    return {name: Timing(statistics.median(t), min(t), len(t)) for name, t in times.items()}


def measure(fn: Callable[[], object], device: torch.device | str = "cpu", *, budget_s: float = 1.0,
            min_repeats: int = 3, max_repeats: int = 200, warmup: int = 1) -> Timing:
    """Time one call (see :func:`measure_together`)."""
    return measure_together({"call": fn}, device, budget_s=budget_s, min_repeats=min_repeats,
                            max_repeats=max_repeats, warmup=warmup)["call"]
