"""The settings guide: what each of the six settings does, three values each, on the demo scene.

Every tile is the demo's soft inpaint (same photo, mask, seed and weight-free model) with one
setting changed and the other five at their defaults. The three settings of stage 1 change the
sampling, so each of their values is a sampling run; the three of stage 2 only change the
composite, so they share the default run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from ..settings import DEFAULT_SETTINGS, SETTINGS, SPECS_BY_NAME
from . import SIZE, BlockCodec, _composite, _sample, build_scene

__all__ = ["GUIDE_VALUES", "render_guide"]

# Low, default, high for each setting, in the settings table's order.
GUIDE_VALUES: dict[str, tuple[float, float, float]] = {
    "mask_blend_power": (0.25, 1.0, 4.0),
    "mask_blend_scale": (0.1, 0.5, 2.0),
    "inpaint_detail_preservation": (1.0, 4.0, 16.0),
    "composite_mask_influence": (0.0, 0.5, 1.0),
    "composite_difference_threshold": (0.1, 0.5, 2.0),
    "composite_difference_contrast": (0.5, 2.0, 8.0),
}
HEADER = 16
CAPTION = 14


def _fmt(value: float) -> str:
    return f"{value:g}"


def render_guide(out_path: Path | str, steps: int = 12, strength: float = 0.9, seed: int = 1,
                 progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Render the labelled grid (one row per setting, three values each) to ``out_path``."""
    codec = BlockCodec()
    scene = build_scene(codec)
    runs = {}
    width = SIZE * 3
    row_height = HEADER + SIZE + CAPTION
    grid = Image.new("RGB", (width, row_height * len(SETTINGS)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for row, spec in enumerate(SETTINGS):
        top = row * row_height
        stage = "stage 1, sampling" if spec.section == "denoising" else "stage 2, composite"
        draw.text((4, top + 2), f"{spec.label} ({stage}; default {_fmt(spec.default)})", fill=(0, 0, 0))
        for col, value in enumerate(GUIDE_VALUES[spec.name]):
            settings = dataclasses.replace(DEFAULT_SETTINGS, **{spec.name: value})
            sampling = settings if spec.section == "denoising" else DEFAULT_SETTINGS
            key = sampling.values()
            if key not in runs:
                label = f"{len(runs) + 1}"
                report = None if progress is None else (lambda d, t, label=label: progress(label, d, t))
                runs[key] = _sample(scene, codec, sampling, steps, strength, seed, report)
            picture, _ = _composite(scene, settings, runs[key])
            grid.paste(picture.convert("RGB"), (col * SIZE, top + HEADER))
            marker = " (default)" if value == SPECS_BY_NAME[spec.name].default else ""
            draw.text((col * SIZE + 4, top + HEADER + SIZE + 1), f"{_fmt(value)}{marker}", fill=(0, 0, 0))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out
