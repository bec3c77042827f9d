"""X/Y/Z plot axes for the on/off switch, the six settings and the noise level conversion.

An axis value is stored on the cell's job as a fresh dict (``p.soft_inpainting_overrides``); the
script's ``process`` lays it over the job's arguments, so it goes through the same validation and
lands in that image's infotext. A fresh dict per cell matters: the X/Y/Z script shallow-copies the
job for every cell, so mutating a shared dict would leak one cell's value into the next.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from lib_soft_inpainting.settings import ENABLED_LABEL, SETTINGS, TIMESTEP_FLAG, TIMESTEP_LABEL, parse_bool

OVERRIDES_ATTRIBUTE = "soft_inpainting_overrides"
AXIS_PREFIX = "[Soft inpainting] "
ENABLED_KEY = "enabled"
CONVERSION_KEY = TIMESTEP_FLAG
CONVERSION_AXIS = "Noise level conversion"
BOOLEAN_AXES = {ENABLED_KEY: ENABLED_LABEL, CONVERSION_KEY: f"\"{TIMESTEP_LABEL}\" ({TIMESTEP_FLAG})"}


def overrides(p: Any) -> dict[str, Any]:
    """The axis values set on this job (empty when none)."""
    value = getattr(p, OVERRIDES_ATTRIBUTE, None)
    return dict(value) if isinstance(value, dict) else {}


def _setter(name: str):
    def apply(p: Any, x: Any, xs: Any) -> None:
        if name in BOOLEAN_AXES:
            x = parse_bool(x, BOOLEAN_AXES[name], name)
        setattr(p, OVERRIDES_ATTRIBUTE, {**overrides(p), name: x})

    return apply


def find_xyz_module(scripts_data: Iterable[Any]) -> Any | None:
    """The X/Y/Z plot script's module, if it is loaded (A1111 ``scripts/xyz_grid.py``; Forge
    Classic's ``extensions-builtin/xyz/scripts/xyz_grid.py`` loads under the same module name)."""
    for data in scripts_data:
        if getattr(data.script_class, "__module__", "") in ("xyz_grid.py", "scripts.xyz_grid"):
            return getattr(data, "module", None)
    return None


def axis_labels() -> list[str]:
    return [AXIS_PREFIX + "Enabled", *(AXIS_PREFIX + spec.label for spec in SETTINGS),
            AXIS_PREFIX + CONVERSION_AXIS]


def _from_layout(xyz: Any, name: str, packages: tuple[str, ...]) -> Any | None:
    """``name`` from the X/Y/Z module, else from the helper package it imports from (Forge
    Classic's ``lib_xyz``, already loaded by the plot script)."""
    found = getattr(xyz, name, None)
    for package in packages:
        if found is None:
            found = getattr(sys.modules.get(package), name, None)
    return found


def _boolean_choices(reverse: bool = False):
    def choices() -> list[str]:
        return ["False", "True"] if reverse else ["True", "False"]

    return choices


def _option_class(xyz: Any) -> Any | None:
    """The plain axis class (``AxisOption``): the plot offers it on txt2img and img2img alike, and
    on txt2img the values reach the inpainting passes other extensions run (ADetailer's)."""
    return _from_layout(xyz, "AxisOption", ("lib_xyz.classes", "lib_xyz"))


def register_axes(scripts_data: Iterable[Any]) -> str | None:
    """Add our axes to the X/Y/Z plot, each exactly once however often this is called.

    Returns a console line when the plot is there but its layout is one this extension cannot use
    (the axes are then skipped); None otherwise, also when no plot script is loaded.
    """
    xyz = find_xyz_module(scripts_data)
    if xyz is None:
        return None
    options = getattr(xyz, "axis_options", None)
    make = _option_class(xyz)
    if not isinstance(options, list) or make is None:
        return "X/Y/Z plot axes skipped: this host's X/Y/Z script has no axis list or axis class"
    boolean_choice = _from_layout(xyz, "boolean_choice", ("lib_xyz.utils", "lib_xyz")) or _boolean_choices
    existing = {getattr(option, "label", None) for option in options}
    enabled_label, *setting_labels, conversion_label = axis_labels()
    if enabled_label not in existing:
        options.append(make(enabled_label, str, _setter(ENABLED_KEY), choices=boolean_choice(reverse=True)))
    for label, spec in zip(setting_labels, SETTINGS, strict=True):
        if label not in existing:
            options.append(make(label, float, _setter(spec.name)))
    if conversion_label not in existing:
        options.append(make(conversion_label, str, _setter(CONVERSION_KEY),
                            choices=boolean_choice(reverse=True)))
    return None
