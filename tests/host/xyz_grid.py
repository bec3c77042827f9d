"""The X/Y/Z plot script's module (``scripts/xyz_grid.py``), loaded by the host under the module name
``xyz_grid.py``: its axis option classes, ``boolean_choice``, ``axis_options``, and a one-axis run
that copies the job for every cell and applies the axis value to the copy, as the script does."""

from __future__ import annotations

from copy import copy
from typing import Any

from modules import processing, scripts


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]

    return choice


class AxisOption:
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None,
                 prepare=None):
        self.label, self.type, self.apply = label, type, apply
        self.format_value, self.confirm, self.cost = format_value, confirm, cost
        self.choices, self.prepare = choices, prepare


class AxisOptionImg2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = True


def _apply_field(field: str):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


axis_options: list[AxisOption] = [AxisOption("Seed", int, _apply_field("seed"))]


class Script(scripts.Script):
    current_axis_options: list[AxisOption] | None = None

    def title(self):
        return "X/Y/Z plot"

    def ui(self, is_img2img):
        """The axis choices are fixed here, when the host builds the UI (also in API-only mode)."""
        self.current_axis_options = [x for x in axis_options
                                     if type(x) is AxisOption or x.is_img2img == is_img2img]
        return []

    def run_axis(self, p: Any, label: str, values: list[str]) -> list[processing.Processed]:
        """One image row along one axis: the values are parsed with the option's type, like the script."""
        choices = self.current_axis_options if self.current_axis_options is not None else axis_options
        option = next(o for o in choices if o.label == label)
        xs = [option.type(v) for v in values]
        cells = []
        for x in xs:
            pc = copy(p)
            option.apply(pc, x, xs)
            cells.append(processing.process_images(pc))
        return cells
