"""X/Y/Z plot axes for the on/off switch and the six settings.

An axis value is stored on the cell's job as a fresh dict (``p.soft_inpainting_overrides``); the
script's ``process`` lays it over the job's arguments, so it goes through the same validation and
lands in that image's infotext. A fresh dict per cell matters: the X/Y/Z script shallow-copies the
job for every cell, so mutating a shared dict would leak one cell's value into the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lib_soft_inpainting.settings import ENABLED_LABEL, SETTINGS, parse_bool

OVERRIDES_ATTRIBUTE = "soft_inpainting_overrides"
AXIS_PREFIX = "[Soft inpainting] "
ENABLED_KEY = "enabled"


def overrides(p: Any) -> dict[str, Any]:
    """The axis values set on this job (empty when none)."""
    value = getattr(p, OVERRIDES_ATTRIBUTE, None)
    return dict(value) if isinstance(value, dict) else {}


def _setter(name: str):
    def apply(p: Any, x: Any, xs: Any) -> None:
        if name == ENABLED_KEY:
            x = parse_bool(x, ENABLED_LABEL)
        setattr(p, OVERRIDES_ATTRIBUTE, {**overrides(p), name: x})

    return apply


def find_xyz_module(scripts_data: Iterable[Any]) -> Any | None:
    """The WebUI's built-in X/Y/Z plot script module, if it is loaded."""
    for data in scripts_data:
        if getattr(data.script_class, "__module__", "") in ("xyz_grid.py", "scripts.xyz_grid"):
            return getattr(data, "module", None)
    return None


def axis_labels() -> list[str]:
    return [AXIS_PREFIX + "Enabled", *(AXIS_PREFIX + spec.label for spec in SETTINGS)]


def register_axes(scripts_data: Iterable[Any]) -> bool:
    """Add our axes to the X/Y/Z plot (once); does nothing when that script is absent."""
    xyz = find_xyz_module(scripts_data)
    if xyz is None:
        return False
    existing = {option.label for option in xyz.axis_options}
    enabled_label, *setting_labels = axis_labels()
    new_options = [xyz.AxisOptionImg2Img(enabled_label, str, _setter(ENABLED_KEY),
                                         choices=xyz.boolean_choice(reverse=True))]
    new_options += [xyz.AxisOptionImg2Img(label, float, _setter(spec.name))
                    for label, spec in zip(setting_labels, SETTINGS, strict=True)]
    xyz.axis_options.extend(option for option in new_options if option.label not in existing)
    return True
