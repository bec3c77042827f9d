"""Forge Classic's ``extensions-builtin/xyz/scripts/xyz_grid.py`` (commit 1f95d717): the plot
script imports its classes from ``lib_xyz`` and has no ``AxisOptionImg2Img`` or ``boolean_choice``
of its own; ``axis_options`` is ``lib_xyz.builtins.builtin_options``."""

from copy import copy

from lib_xyz import builtins
from lib_xyz.classes import AxisOption
from modules import processing, scripts

axis_options = builtins.builtin_options


class XYZ(scripts.Script):
    current_axis_options = None

    def title(self):
        return "X/Y/Z Plot"

    def ui(self, is_img2img):
        self.current_axis_options = [x for x in axis_options
                                     if type(x) is AxisOption or x.is_img2img == is_img2img]
        return []

    def run_axis(self, p, label, values):
        choices = self.current_axis_options if self.current_axis_options is not None else axis_options
        option = next(o for o in choices if o.label == label)
        cells = []
        for x in [option.type(v) for v in values]:
            pc = copy(p)
            option.apply(pc, x, [])
            cells.append(processing.process_images(pc))
        return cells
