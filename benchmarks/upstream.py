"""``python -m benchmarks.upstream PATH``: our results and speed next to the WebUI's built-in
extension, measured in one run.

PATH is the built-in's script, ``extensions-builtin/soft-inpainting/scripts/soft_inpainting.py``
of a WebUI checkout (it is not part of this repository). It is loaded as the WebUI would load it,
against the WebUI stand-in in ``tests/host``. Then:

1. **Agreement (SPEC §9)** on seeded random cases: ``get_modified_nmask`` (max abs error ≤ 1e-6),
   ``latent_blend`` (error length ≤ 1e-5 × upstream's length per pixel), the filter on float32
   maps of many shapes and windows (≤ 1e-5), and the final overlay masks of the adaptive path
   (no pixel off by more than 2).
2. **Speed**: the difference masks of a ``--size``² latent (upstream: its per-pixel filter, twice,
   as ``apply_adaptive_masks`` runs it) and the whole picture stage, ours against upstream's.

Exits 1 when a tolerance is exceeded.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from lib_soft_inpainting import (
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    latent_difference_masks,
    pictures,
    weighted_histogram_filter,
)

from .cases import make_case

HOST = Path(__file__).resolve().parents[1] / "tests" / "host"
WINDOWS = [(0.9, 1.0, 1.0), (0.25, 0.75, 1.0), (0.0, 1.0, 1.0), (0.5, 0.5, 0.5), (0.1, 0.3, 2.0)]


def load_upstream(path: Path) -> ModuleType:
    """The built-in's script module, imported against the WebUI stand-in."""
    if str(HOST) not in sys.path:
        sys.path.insert(0, str(HOST))
    spec = importlib.util.spec_from_file_location("upstream_soft_inpainting", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(up: ModuleType, values: Sequence[float]) -> tuple[SoftInpaintingSettings, object]:
    return SoftInpaintingSettings(*values), up.SoftInpaintingSettings(*values)


def _random_values(rng: np.random.Generator) -> list[float]:
    return [float(rng.uniform(0, 8)), float(rng.uniform(0, 8)), float(rng.uniform(1, 32)),
            float(rng.uniform(0, 1)), float(rng.uniform(0.05, 8)), float(rng.uniform(0, 8))]


def check_blend(up: ModuleType, cases: int, rng: np.random.Generator) -> tuple[float, float]:
    """Worst (nmask abs error, blend relative error) over random settings, sigmas and masks."""
    worst_t = worst_blend = 0.0
    for i in range(cases):
        ours, theirs = _settings(up, _random_values(rng))
        gen = torch.Generator().manual_seed(i)
        a, b = torch.randn(2, 4, 17, 13, generator=gen), torch.randn(2, 4, 17, 13, generator=gen) * 3
        nmask = torch.rand(4, 17, 13, generator=gen)
        sigma = torch.tensor(float(rng.choice([0.03, 0.5, 1.0, 2.5, 14.6])))
        t_ours, t_up = get_modified_nmask(ours, nmask, sigma), up.get_modified_nmask(theirs, nmask, sigma)
        worst_t = max(worst_t, (t_ours - t_up).abs().max().item())
        got, want = latent_blend(ours, a, b, t_up), up.latent_blend(theirs, a, b, t_up).float()
        want_len = torch.linalg.vector_norm(want, dim=1).clamp_min(1e-30)
        err = torch.linalg.vector_norm(got - want, dim=1) / want_len
        worst_blend = max(worst_blend, err.max().item())
    return worst_t, worst_blend


def check_filter(up: ModuleType, rng: np.random.Generator) -> float:
    """Worst abs error of the filter over shapes (1×1 up to odd sizes), windows and map kinds."""
    kernel, center = get_gaussian_kernel(1.5, 2)
    worst = 0.0
    for shape in [(1, 1), (1, 7), (6, 1), (2, 2), (5, 9), (16, 16), (23, 17)]:
        for kind in ("random", "ties", "zeros"):
            img = rng.standard_normal(shape).astype(np.float32)
            if kind == "ties":
                img = np.round(img * 2).astype(np.float32)
            elif kind == "zeros":
                img = np.zeros(shape, np.float32)
            for window in WINDOWS:
                got = weighted_histogram_filter(img, kernel, center, *window)
                want = up.weighted_histogram_filter(img, kernel, center, *window)
                worst = max(worst, float(np.abs(got - want).max()))
    return worst


def check_overlay_masks(up: ModuleType, size: int, cases: int, rng: np.random.Generator) -> int:
    """Worst pixel difference of the final overlay masks, ours against upstream's."""
    worst = 0
    for i in range(cases):
        ours, theirs = _settings(up, _random_values(rng))
        case = make_case(size, 2, seed=i, settings=ours)
        width = height = size * 8
        overlay = case.init_image.convert("RGBA")
        theirs_masks = up.apply_adaptive_masks(theirs, case.nmask, case.latent_orig, case.latent_processed,
                                               [overlay, overlay.copy()], width, height, None)
        ours_masks = pictures.adaptive_composite(ours, case.nmask, case.latent_orig, case.latent_processed,
                                                 [overlay], width, height, None).masks
        for a, b in zip(ours_masks, theirs_masks, strict=True):
            diff = np.abs(np.asarray(a.convert("L"), int) - np.asarray(b.convert("L"), int))
            worst = max(worst, int(diff.max()))
    return worst


def _time(fn: Callable[[], object], repeats: int) -> float:
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best.append(time.perf_counter() - start)
    return float(np.median(best))


def speed(up: ModuleType, size: int, upstream_repeats: int) -> list[tuple[str, float, float]]:
    """(what, ours in s, upstream in s) for the difference masks and the whole picture stage."""
    settings = SoftInpaintingSettings()
    theirs = up.SoftInpaintingSettings(1, 0.5, 4, 0, 0.5, 2)
    case = make_case(size, 1, seed=0, settings=settings)
    kernel, center = up.get_gaussian_kernel(stddev_radius=1.5, max_radius=2)
    distance = torch.norm(case.latent_processed - case.latent_orig, p=2, dim=1)[0].numpy()

    def upstream_filter() -> None:
        once = up.weighted_histogram_filter(distance, kernel, center, 0.9, 1, 1)
        up.weighted_histogram_filter(once, kernel, center, 0.25, 0.75, 1)

    width = height = size * 8
    overlay = case.init_image.convert("RGBA")
    def our_masks() -> None:
        latent_difference_masks(settings, case.nmask, case.latent_orig, case.latent_processed)

    rows = [("difference masks (the filter, twice)", _time(our_masks, 20),
             _time(upstream_filter, upstream_repeats)),
            ("whole picture stage (masks, resize, blur, overlays)",
             _time(lambda: pictures.adaptive_composite(settings, case.nmask, case.latent_orig,
                                                       case.latent_processed, [overlay], width, height, None),
                   10),
             _time(lambda: up.apply_adaptive_masks(theirs, case.nmask, case.latent_orig,
                                                   case.latent_processed, [overlay.copy()], width, height,
                                                   None), upstream_repeats))]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("script", type=Path, help="the built-in's scripts/soft_inpainting.py")
    parser.add_argument("--size", type=int, default=128, help="latent size for the timing (default 128)")
    parser.add_argument("--cases", type=int, default=40, help="random cases per agreement check")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the upstream code")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    up = load_upstream(args.script)
    rng = np.random.default_rng(0)
    worst_t, worst_blend = check_blend(up, args.cases, rng)
    worst_filter = check_filter(up, rng)
    worst_mask = check_overlay_masks(up, 24, max(2, args.cases // 8), rng)
    checks = [("get_modified_nmask, max abs error", worst_t, 1e-6),
              ("latent_blend, error length / upstream length", worst_blend, 1e-5),
              ("weighted_histogram_filter, max abs error", worst_filter, 1e-5),
              ("final overlay masks, max pixel difference", worst_mask, 2)]
    failed = False
    print("Agreement with the built-in extension (SPEC §9):")
    for name, value, limit in checks:
        ok = value <= limit
        failed |= not ok
        print(f"  {name}: {value:.3g} (limit {limit:g}) {'ok' if ok else 'EXCEEDED'}")
    print(f"Speed, latent {args.size}² (picture {args.size * 8}²), batch 1, "
          f"{torch.get_num_threads()} torch threads:")
    for name, ours, theirs in speed(up, args.size, args.repeats):
        print(f"  {name}: ours {ours * 1e3:.1f} ms, upstream {theirs:.2f} s: {theirs / ours:.0f}× faster")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
