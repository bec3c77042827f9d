"""``modules.script_callbacks``: registries the host fires at start-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

callbacks_ui_settings: list[Callable[[], None]] = []
callbacks_before_ui: list[Callable[[], None]] = []
callbacks_app_started: list[Callable[[Any, Any], None]] = []


def on_ui_settings(callback: Callable[[], None]) -> None:
    callbacks_ui_settings.append(callback)


def on_before_ui(callback: Callable[[], None]) -> None:
    callbacks_before_ui.append(callback)


def on_app_started(callback: Callable[[Any, Any], None]) -> None:
    callbacks_app_started.append(callback)


def clear() -> None:
    for registry in (callbacks_ui_settings, callbacks_before_ui, callbacks_app_started):
        registry.clear()
