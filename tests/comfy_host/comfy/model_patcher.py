"""``comfy.model_patcher.ModelPatcher``: the parts a patch node uses."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from . import patcher_extension


def create_model_options_clone(options: dict) -> dict:
    return patcher_extension.copy_nested_dicts(options)


class ModelPatcher:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.model_options: dict[str, Any] = {"transformer_options": {}}
        self.wrappers: dict[str, dict[str, list[Callable]]] = {}
        self.load_device = "cpu"

    def clone(self) -> ModelPatcher:
        n = ModelPatcher(self.model)
        n.model_options = copy.deepcopy(self.model_options)
        n.wrappers = {
            kind: {key: list(ws) for key, ws in by_key.items()} for kind, by_key in self.wrappers.items()
        }
        return n

    def get_model_object(self, name: str) -> Any:
        return getattr(self.model, name)

    def set_model_sampler_post_cfg_function(
        self, fn: Callable, disable_cfg1_optimization: bool = False
    ) -> None:
        self.model_options["sampler_post_cfg_function"] = [
            *self.model_options.get("sampler_post_cfg_function", []),
            fn,
        ]
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_denoise_mask_function(self, fn: Callable) -> None:
        self.model_options["denoise_mask_function"] = fn

    def add_wrapper_with_key(self, kind: str, key: str, wrapper: Callable) -> None:
        self.wrappers.setdefault(kind, {}).setdefault(key, []).append(wrapper)

    def remove_wrappers_with_key(self, kind: str, key: str) -> None:
        self.wrappers.get(kind, {}).pop(key, None)
