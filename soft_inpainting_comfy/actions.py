"""What each node does, shared by the V1 and V3 classes (which only declare inputs and outputs)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from lib_soft_inpainting.settings import SETTINGS, SettingsError, SoftInpaintingSettings, coerce_setting
from lib_soft_inpainting.ui import PRESETS

from . import composite as _composite
from . import patch
from .specs import CUSTOM_PRESET

LOG = logging.getLogger("soft_inpainting")


def _named_as_inputs(message: str) -> str:
    """The settings module's message with each setting named by its input id here
    (``Preservation strength (preservation_strength)``), so API users find it in their prompt."""
    for spec in SETTINGS:
        message = message.replace(f"({spec.name})", f"({spec.snake_label})")
    return message


def validate_settings(**values: Any) -> bool | str:
    """ComfyUI's input check for the Settings node: True, or the message naming setting and range.

    Declaring this check makes ComfyUI skip its own min/max test for these inputs, so a finite
    value out of range is clamped (with a console note) as in the WebUI, while NaN and infinity are
    refused before the prompt runs. ``None`` is a linked input, checked when the node runs.
    """
    preset = values.get("preset")
    if preset is not None and preset != CUSTOM_PRESET and preset not in PRESETS:
        return f"unknown preset {preset!r}; choose one of {', '.join([CUSTOM_PRESET, *PRESETS])}"
    for spec in SETTINGS:
        value = values.get(spec.snake_label)
        if value is None:
            continue
        try:
            coerce_setting(spec, value)
        except SettingsError as error:
            return _named_as_inputs(str(error))
    return True


def make_settings(preset: str = CUSTOM_PRESET, **values: Any) -> SoftInpaintingSettings:
    """The Settings node: the preset's values, or the six given ones (validated, clamped with a note)."""
    if preset not in (CUSTOM_PRESET, None) and preset not in PRESETS:
        raise SettingsError(f"soft inpainting: unknown preset {preset!r}; choose one of "
                            f"{', '.join([CUSTOM_PRESET, *PRESETS])}")
    if preset in PRESETS:
        return PRESETS[preset]
    given = {spec.name: values.get(spec.snake_label, spec.default) for spec in SETTINGS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes go to ComfyUI's console log below instead
        try:
            settings = SoftInpaintingSettings(**given)
        except SettingsError as error:  # a linked input, which prompt validation does not see
            raise SettingsError(_named_as_inputs(str(error))) from error
    for note in settings.adjustments:
        LOG.warning("soft inpainting: %s", note)
    return settings


def _check_settings(settings: Any) -> SoftInpaintingSettings:
    if not isinstance(settings, SoftInpaintingSettings):
        raise SettingsError(f"soft inpainting: the settings input must come from a Soft Inpainting Settings "
                            f"node, got {type(settings).__name__}")
    return settings


def apply(model: Any, settings: Any) -> Any:
    """The Apply node: a patched clone of the model."""
    return patch.patch_model(model, _check_settings(settings))


def composite(settings: Any, model: Any, original_image: Any, decoded_image: Any, original_latent: Any,
              sampled_latent: Any, mask: Any = None) -> tuple[Any, Any]:
    """The Composite node."""
    return _composite.composite(_check_settings(settings), model, original_image, decoded_image,
                                original_latent, sampled_latent, mask)
