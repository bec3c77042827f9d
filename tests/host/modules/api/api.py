"""``modules.api.api``: how ``/sdapi/v1/img2img`` turns ``alwayson_scripts`` into ``script_args``.

Defaults come from the components' values of a fresh ``ui()`` call; the request's ``args`` then
overwrite positions from ``args_from``, at most ``args_to − args_from`` of them; the script is found
by its title, case-insensitively, first match wins.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


class HTTPException(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


def script_name_to_index(name: str, scripts: list[Any]) -> int:
    try:
        return [script.title().lower() for script in scripts].index(name.lower())
    except Exception as e:
        raise HTTPException(status_code=422, detail=f"Script '{name}' not found") from e


def init_default_script_args(script_runner: Any) -> list[Any]:
    last_arg_index = max([1, *(script.args_to for script in script_runner.scripts)])
    script_args: list[Any] = [None] * last_arg_index
    script_args[0] = 0
    with gr.Blocks():
        for script in script_runner.scripts:
            if script.ui(script.is_img2img):
                script_args[script.args_from:script.args_to] = [e.value for e in script.ui(script.is_img2img)]
    return script_args


def init_script_args(alwayson_scripts: dict[str, Any], default_script_args: list[Any], script_runner: Any
                     ) -> list[Any]:
    script_args = default_script_args.copy()
    for name, request in alwayson_scripts.items():
        script = script_runner.scripts[script_name_to_index(name, script_runner.scripts)]
        if "args" in request:
            args = request["args"]
            for idx in range(0, min(script.args_to - script.args_from, len(args))):
                script_args[script.args_from + idx] = args[idx]
    return script_args
