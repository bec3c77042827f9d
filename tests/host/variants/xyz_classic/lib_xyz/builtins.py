"""Forge Classic's ``lib_xyz/builtins.py``: the built-in axis list the plot script uses."""

from .classes import AxisOption


def _apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


builtin_options = [AxisOption("Seed", int, _apply_field("seed"))]
