"""Fuzz the API's argument vectors through the core (issue 3, item 6).

Every vector goes through :func:`lib_soft_inpainting.settings.parse_script_args`, the entry point
the WebUI script uses for UI and API arguments alike. A :class:`SettingsError` is a rejection (the
intended answer to bad input); any other exception is a crash. Each accepted vector then drives
stage 1 (``get_modified_nmask`` + ``latent_blend`` in float32, float16 and bfloat16) and stage 2
(``latent_difference_masks``) on tiny random latents with a random sigma, and every output is
checked: finite, in the input's dtype and shape, masks inside [0, 1].

Run: ``python tests/fuzz_api_args.py --count 10000 --seed 0`` (exit status 1 on any crash or bad
output). ``tests/test_fuzz_args.py`` runs a few hundred vectors as part of the suite.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

if __package__ in (None, "") and __name__ == "__main__":  # run as a script: find the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from lib_soft_inpainting import get_modified_nmask, latent_blend, latent_difference_masks
from lib_soft_inpainting.settings import (
    SETTINGS,
    TIMESTEP_FLAG,
    ParsedArgs,
    SettingsError,
    parse_script_args,
)

BLEND_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class BrokenRepr:
    """An object whose ``repr`` raises: error messages must survive it."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


# ---------------------------------------------------------------- random argument vectors


def _setting_value(rng: random.Random, spec_index: int) -> Any:
    """A value for one numeric position: mostly usable, often out of range, sometimes garbage."""
    spec = SETTINGS[spec_index]
    kind = rng.random()
    if kind < 0.6:
        value = rng.uniform(spec.minimum, spec.maximum)
        return rng.choice([value, round(value), str(value), f" {value:.3g} ", np.float32(value),
                           np.float64(value), int(value), spec.minimum, spec.maximum])
    if kind < 0.7:
        return None
    if kind < 0.88:  # finite but out of range: clamped
        return rng.choice([-1.0, -1e-9, spec.maximum + 1e-6, 1e6, -1e6, 1.7e308, -1.7e308, 5e-324,
                           -0.0, 10 ** rng.randint(1, 30), -(10 ** rng.randint(1, 30)), "1e30", "-3",
                           np.float16(-65504), torch.tensor(100.0), spec.maximum * 2])
    return _garbage(rng)


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    """Anything a careless or hostile client could send, and a few Python-only oddities."""
    choices: list[Callable[[], Any]] = [
        lambda: float("nan"), lambda: float("inf"), lambda: -float("inf"),
        lambda: rng.choice(["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "abc", "",
                            " ", "0x10", "1,5", "true", "false", "None", "null", "\x00", "½",
                            "1" * rng.randint(300, 2000), "-" * 3, "1e", "e5", ".", "0.5.1"]),
        lambda: 10 ** rng.randint(309, 2000), lambda: -(10 ** rng.randint(309, 2000)),
        lambda: rng.choice([True, False]),
        lambda: rng.choice([b"0.5", b"", bytearray(b"1")]),
        lambda: rng.choice([object(), BrokenRepr(), complex(1, 0), complex(0, 1), Decimal("0.5"),
                            Decimal("NaN"), Fraction(1, 3), Ellipsis, type, print]),
        lambda: rng.choice([np.float64("nan"), np.float32("inf"), np.bool_(True), np.array([0.5]),
                            np.array(0.5), np.array([]), torch.tensor(float("nan")),
                            torch.tensor([1.0, 2.0]), torch.tensor(2)]),
        lambda: [] if depth > 2 else [_garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))],
        lambda: {} if depth > 2 else {_random_key(rng): _garbage(rng, depth + 1)
                                      for _ in range(rng.randint(0, 3))},
        lambda: (0.5,), lambda: {0.5}, lambda: range(3),
    ]
    return rng.choice(choices)()


def _random_key(rng: random.Random) -> Any:
    """A key for a named-settings dict: every accepted spelling, and unknown ones."""
    spec = rng.choice(SETTINGS)
    known = [spec.name, spec.snake_label, spec.label, spec.infotext_key, spec.elem_id,
             spec.name.upper(), f"  {spec.snake_label} ", TIMESTEP_FLAG, "enabled"]
    unknown = ["threshold", "", " ", "schedule-bias", "mask_blend_powerr", 0, None, 1.5, ("a",),
               "Soft inpainting note", "__class__"]
    return rng.choice(known) if rng.random() < 0.85 else rng.choice(unknown)


def _enabled(rng: random.Random) -> Any:
    if rng.random() < 0.95:
        return rng.choice([True, False, "true", "false", "True", " yes ", "on", "off", "1", "0", 1, 0,
                           1.0, None, np.bool_(False)])
    return _garbage(rng)


def random_vector(rng: random.Random) -> Any:
    """One argument vector in one of the forms of issue 3 item 1, or a malformed one."""
    form = rng.random()
    if form < 0.3:  # full positional list, sometimes with the timestep flag and extra values
        args = [_enabled(rng), *(_setting_value(rng, i) for i in range(len(SETTINGS)))]
        if rng.random() < 0.3:
            args.append(rng.choice([True, False, "false", None, _garbage(rng)]))
            args.extend(_garbage(rng) for _ in range(rng.randint(0, 3)))
        return args if rng.random() < 0.8 else tuple(args)
    if form < 0.5:  # short list
        return [_enabled(rng), *(_setting_value(rng, i) for i in range(rng.randint(0, len(SETTINGS) - 1)))]
    if form < 0.75:  # one dict of named settings
        named = {}
        for _ in range(rng.randint(0, 5)):
            key = _random_key(rng)
            named[key] = _setting_value(rng, rng.randrange(len(SETTINGS))) if key != TIMESTEP_FLAG else \
                rng.choice([True, "false", _garbage(rng)])
        args = [_enabled(rng), named]
        if rng.random() < 0.15:
            args.append(_garbage(rng))
        return args
    if form < 0.8:
        return rng.choice([[], [None], [None] * rng.randint(2, 9), None])
    if form < 0.88:  # dicts out of place
        return rng.choice([[_enabled(rng), 1, {"difference_threshold": 1}],
                           [_enabled(rng), {"schedule_bias": 1}, {"difference_contrast": 2}],
                           [{"enabled": True, "schedule_bias": 1}], {"schedule_bias": 1}])
    if form < 0.94:  # nested lists and other top-level shapes
        return rng.choice([[[True, 1, 0.5, 4, 0, 0.5, 2]], "true", b"true", 5, 1.5, object(),
                           iter([True, 0.5]), (x for x in [True, 2.0]), np.array([1.0, 0.5])])
    return [_garbage(rng) for _ in range(rng.randint(1, 9))]


# ---------------------------------------------------------------- the core on accepted settings


@dataclass
class FuzzReport:
    """What one run found; ``ok`` when nothing crashed and every output was sound."""

    count: int = 0
    accepted: int = 0
    rejected: int = 0
    clamped: int = 0
    crashes: int = 0
    bad_outputs: int = 0
    core_runs: int = 0
    examples: list[str] = field(default_factory=list)
    crash_kinds: Counter = field(default_factory=Counter)
    rejection_kinds: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.crashes == 0 and self.bad_outputs == 0

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)


def _random_sigma(rng: random.Random) -> torch.Tensor | float:
    """A noise level as hosts pass it: k-diffusion sigmas (0 to ~160), flow-matching (0 to 1), and
    timesteps used as sigma (up to 999); as the host's first tensor element or a plain float."""
    sigma = rng.choice([0.0, 1e-6, 0.0292, 1.0, 14.6146, 157.4, 999.0, 1000.0, rng.uniform(0, 20),
                        10 ** rng.uniform(-4, 3)])
    return torch.tensor([sigma, sigma])[0] if rng.random() < 0.7 else sigma


def _random_mask(gen: torch.Generator, rng: random.Random, shape: tuple[int, ...]) -> torch.Tensor:
    kind = rng.choice(["uniform", "binary", "zeros", "ones", "wild", "near_edges"])
    u = torch.rand(shape, generator=gen)
    if kind == "binary":
        return (u > 0.5).float()
    if kind == "zeros":
        return torch.zeros(shape)
    if kind == "ones":
        return torch.ones(shape)
    if kind == "wild":  # outside [0, 1]
        return u * 6 - 3
    if kind == "near_edges":
        return torch.where(u > 0.5, 1 - u * 1e-6, u * 1e-30)
    return u


def _check(report: FuzzReport, what: str, out: torch.Tensor, dtype: torch.dtype,
           shape: tuple[int, ...], unit: bool = False) -> None:
    problems = []
    if out.dtype != dtype:
        problems.append(f"dtype {out.dtype} (want {dtype})")
    if tuple(out.shape) != shape:
        problems.append(f"shape {tuple(out.shape)} (want {shape})")
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        problems.append("non-finite values")
    if unit and not bool(((out >= 0) & (out <= 1)).all()):
        problems.append("values outside [0, 1]")
    if problems:
        report.bad_outputs += 1
        report.note(f"{what}: " + ", ".join(problems))


def run_core(report: FuzzReport, parsed: ParsedArgs, rng: random.Random, gen: torch.Generator) -> None:
    """Stage 1 in three dtypes and stage 2 on tiny latents, checking every output."""
    s = parsed.settings
    b, c, h, w = rng.randint(1, 2), rng.choice([1, 3, 4]), rng.randint(1, 7), rng.randint(1, 7)
    scale = rng.choice([1e-3, 1.0, 4.0, 60.0])
    orig = torch.randn((b, c, h, w), generator=gen) * scale
    current = torch.randn((b, c, h, w), generator=gen) * scale
    if rng.random() < 0.2:
        current[..., 0, 0] = orig[..., 0, 0]  # unchanged pixels and zero-change regions
    if rng.random() < 0.1:
        orig[:, :, -1] = 0.0
        current[:, :, -1] = 0.0  # zero-length vectors
    mask_shape = (rng.choice([1, b]), c, h, w) if rng.random() < 0.5 else (c, h, w)
    nmask = _random_mask(gen, rng, mask_shape)
    sigma = _random_sigma(rng)
    for dtype in BLEND_DTYPES:
        m = nmask.to(dtype)
        t = get_modified_nmask(s, m, sigma)
        _check(report, f"get_modified_nmask {dtype}", t, dtype, mask_shape, unit=True)
        out = latent_blend(s, orig.to(dtype), current.to(dtype), t)
        _check(report, f"latent_blend {dtype}", out, dtype, (b, c, h, w))
    stage2_dtype = rng.choice(BLEND_DTYPES)
    masks = latent_difference_masks(s, nmask.to(stage2_dtype), orig.to(stage2_dtype),
                                    current.to(stage2_dtype))
    _check(report, "latent_difference_masks", masks, torch.uint8, (b, h, w))
    report.core_runs += 1


def _settings_in_range(report: FuzzReport, parsed: ParsedArgs) -> None:
    """Accepted settings must be finite and inside the table's ranges (clamping happened)."""
    for spec, value in zip(SETTINGS, parsed.settings.values(), strict=True):
        if not (isinstance(value, float) and math.isfinite(value) and spec.minimum <= value <= spec.maximum):
            report.bad_outputs += 1
            report.note(f"accepted {spec.name} = {value!r}")
    if not isinstance(parsed.enabled, bool):
        report.bad_outputs += 1
        report.note(f"enabled = {parsed.enabled!r}")


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text[:120]


def run_fuzz(count: int, seed: int) -> FuzzReport:
    """Feed ``count`` random vectors to ``parse_script_args`` and the accepted ones to the core."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    report = FuzzReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clamping warns by design; counted via ``adjustments``
        for vector in _vectors(rng, count):
            report.count += 1
            shown = _safe_repr(vector)
            try:
                parsed = parse_script_args(vector)
            except SettingsError as error:
                report.rejected += 1
                report.rejection_kinds[_rejection_kind(str(error))] += 1
                continue
            except Exception as error:  # anything but a SettingsError is a crash
                report.crashes += 1
                report.crash_kinds[type(error).__name__] += 1
                report.note(f"parse crash {type(error).__name__}: {error} <- {shown}")
                continue
            report.accepted += 1
            report.clamped += bool(parsed.settings.adjustments)
            _settings_in_range(report, parsed)
            try:
                run_core(report, parsed, rng, gen)
            except Exception as error:
                report.crashes += 1
                report.crash_kinds[type(error).__name__] += 1
                report.note(f"core crash {type(error).__name__}: {error} <- {shown}\n"
                            f"{traceback.format_exc(limit=3)}")
    return report


def _rejection_kind(message: str) -> str:
    """A short name for why a vector was rejected, for the summary."""
    for needle, kind in (("(not finite)", "NaN or infinite"), ("(not a number)", "not a number"),
                         ("unknown soft inpainting setting", "unknown name"),
                         ("must be true or false", "bad boolean"), ("must be a list", "not a list"),
                         ("one dict right after", "dict out of place")):
        if needle in message:
            return kind
    return "other"


def _vectors(rng: random.Random, count: int) -> Iterator[Any]:
    for _ in range(count):
        yield random_vector(rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="how many argument vectors")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: thread start-up would dominate
    report = run_fuzz(options.count, options.seed)
    print(f"vectors: {report.count}")
    print(f"rejected (SettingsError): {report.rejected} {dict(report.rejection_kinds.most_common())}")
    print(f"accepted: {report.accepted} (of which clamped: {report.clamped}; "
          f"core runs: {report.core_runs})")
    print(f"crashes: {report.crashes} {dict(report.crash_kinds) if report.crash_kinds else ''}".rstrip())
    print(f"non-finite or malformed outputs: {report.bad_outputs}")
    for example in report.examples:
        print("  " + example)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
