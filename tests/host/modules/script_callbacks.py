"""``modules.script_callbacks``: registries the host fires at start-up and every sampler step.

The ``on_*`` functions take the callback only, as Forge Classic's do (A1111 adds a ``name=``
keyword): an extension that passed ``name=`` would fail to load here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

callbacks_ui_settings: list[Callable[[], None]] = []
callbacks_before_ui: list[Callable[[], None]] = []
callbacks_app_started: list[Callable[[Any, Any], None]] = []
callbacks_cfg_denoiser: list[Callable[[Any], None]] = []
callbacks_cfg_after_cfg: list[Callable[[Any], None]] = []


class CFGDenoiserParams:
    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond,
                 denoiser=None):
        self.x, self.image_cond, self.sigma = x, image_cond, sigma
        self.sampling_step, self.total_sampling_steps = sampling_step, total_sampling_steps
        self.text_cond, self.text_uncond, self.denoiser = text_cond, text_uncond, denoiser


class AfterCFGCallbackParams:
    def __init__(self, x, sampling_step, total_sampling_steps):
        self.x, self.sampling_step, self.total_sampling_steps = x, sampling_step, total_sampling_steps


def on_ui_settings(callback: Callable[[], None]) -> None:
    callbacks_ui_settings.append(callback)


def on_before_ui(callback: Callable[[], None]) -> None:
    callbacks_before_ui.append(callback)


def on_app_started(callback: Callable[[Any, Any], None]) -> None:
    callbacks_app_started.append(callback)


def on_cfg_denoiser(callback: Callable[[Any], None]) -> None:
    callbacks_cfg_denoiser.append(callback)


def on_cfg_after_cfg(callback: Callable[[Any], None]) -> None:
    callbacks_cfg_after_cfg.append(callback)


def cfg_denoiser_callback(params: CFGDenoiserParams) -> None:
    for callback in callbacks_cfg_denoiser:
        callback(params)


def cfg_after_cfg_callback(params: AfterCFGCallbackParams) -> None:
    for callback in callbacks_cfg_after_cfg:
        callback(params)


def clear() -> None:
    for registry in (callbacks_ui_settings, callbacks_before_ui, callbacks_app_started,
                     callbacks_cfg_denoiser, callbacks_cfg_after_cfg):
        registry.clear()
