"""``comfy.patcher_extension``: wrapper kinds, nested wrapper dicts, and the executor chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfy


class _Kinds:
    OUTER_SAMPLE = "outer_sample"
    SAMPLER_SAMPLE = "sampler_sample"
    CALC_COND_BATCH = "calc_cond_batch"


class _KindsWithPredict(_Kinds):
    PREDICT_NOISE = "predict_noise"


def __getattr__(name: str) -> Any:
    if name == "WrappersMP":  # the constant arrived after v0.3.40
        return _KindsWithPredict if comfy.has_predict_noise() else _Kinds
    raise AttributeError(name)


def get_all_wrappers(kind: str, options: dict, is_model_options: bool = False) -> list[Callable]:
    if is_model_options:
        options = options.get("transformer_options", {})
    found: list[Callable] = []
    for wrappers in options.get("wrappers", {}).get(kind, {}).values():
        found.extend(wrappers)
    return found


class WrapperExecutor:
    """Calls wrapper ``idx`` with itself as ``executor``; the last one calls the original."""

    def __init__(self, original: Callable, class_obj: Any, wrappers: list[Callable], idx: int) -> None:
        self.original, self.class_obj, self.wrappers, self.idx = original, class_obj, list(wrappers), idx

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return WrapperExecutor(self.original, self.class_obj, self.wrappers, self.idx + 1).execute(
            *args, **kwargs
        )

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        if self.idx == len(self.wrappers):
            return self.original(*args, **kwargs)
        return self.wrappers[self.idx](self, *args, **kwargs)

    @classmethod
    def new_executor(cls, original: Callable, wrappers: list[Callable]) -> WrapperExecutor:
        return cls(original, None, wrappers, 0)

    @classmethod
    def new_class_executor(
        cls, original: Callable, class_obj: Any, wrappers: list[Callable]
    ) -> WrapperExecutor:
        return cls(original, class_obj, wrappers, 0)


def copy_nested_dicts(source: dict) -> dict:
    """Dicts copied all the way down, lists copied, everything else shared."""
    out = dict(source)
    for key, value in source.items():
        if isinstance(value, dict):
            out[key] = copy_nested_dicts(value)
        elif isinstance(value, list):
            out[key] = list(value)
    return out


def merge_nested_dicts(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict):
            into[key] = merge_nested_dicts(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            into.setdefault(key, []).extend(value)
        else:
            into[key] = value
    return into
