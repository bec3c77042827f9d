"""``modules.infotext_utils``: parsing an infotext and the paste handler's value conversion."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

# ``Key: value`` pairs; a value is a JSON-ish quoted string or runs to the next comma.
_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_generation_parameters(text: str) -> dict[str, Any]:
    """The ``Key: value`` pairs of the infotext's last line (prompts are not needed here)."""
    last_line = text.strip().split("\n")[-1]
    params: dict[str, Any] = {}
    for key, value in _PAIR.findall(last_line):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        params[key.strip()] = value
    return params


def paste(paste_fields: list[tuple[Any, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """What the paste button sends to each control: ``gr.update()`` to leave it, or a new value.

    A reader that raises is reported and leaves its control alone, as in the host.
    """
    res = []
    for output, key in paste_fields:
        if callable(key):
            try:
                v = key(params)
            except Exception as e:  # the host reports and carries on
                res.append({"__error__": repr(e)})
                continue
        else:
            v = params.get(key)
        if v is None:
            res.append(gr.update())
        elif isinstance(v, dict) and v.get("__type__") == "update":
            res.append(v)
        else:
            try:
                valtype = type(output.value)
                if valtype is bool and v == "False":
                    val = False
                elif valtype is int:
                    val = float(v)
                else:
                    val = valtype(v)
                res.append(gr.update(value=val))
            except Exception:
                res.append(gr.update())
    return res
