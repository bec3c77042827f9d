"""The three nodes described once, host-version neutral; V1 and V3 classes are built from this.

Every setting input comes from the one settings table (``lib_soft_inpainting.settings.SETTINGS``):
its label in snake_case is the input id, its label the display name, its range, step, default and help
text the widget's. The presets are the WebUI's (``lib_soft_inpainting.ui.PRESETS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lib_soft_inpainting.settings import SETTINGS
from lib_soft_inpainting.ui import PRESETS

SETTINGS_TYPE = "SOFT_INPAINTING_SETTINGS"
CATEGORY = "latent/inpaint"
CUSTOM_PRESET = "Custom (the values below)"
PRESET_CHOICES = (CUSTOM_PRESET, *PRESETS)


@dataclass(frozen=True)
class InputSpec:
    """One node input: id, ComfyUI type, and the widget options (empty for a socket)."""

    id: str
    type: str
    display_name: str | None = None
    tooltip: str | None = None
    optional: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """One node output; its id differs from every input id (V3 schemas require it), its display
    name is what the node shows."""

    id: str
    type: str
    display_name: str
    tooltip: str | None = None


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    display_name: str
    description: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    validated: tuple[str, ...] = field(default=())  # inputs our own validation checks (not ComfyUI's min/max)


def _setting_input(spec) -> InputSpec:
    """A setting's input; its id is the label in snake_case (``schedule_bias``), which ComfyUI's front
    end shows and API prompts use, and which the settings module accepts as the setting's name."""
    return InputSpec(spec.snake_label, "FLOAT", display_name=spec.label, tooltip=spec.help,
                     default=spec.default, minimum=spec.minimum, maximum=spec.maximum, step=spec.step)


SETTINGS_NODE = NodeSpec(
    node_id="SoftInpaintingSettings",
    display_name="Soft Inpainting Settings",
    description=("The six soft-inpainting settings (the same as the WebUI's). A preset other than Custom "
                 "replaces all six values."),
    inputs=(
        InputSpec("preset", "COMBO", display_name="Preset", default=CUSTOM_PRESET, choices=PRESET_CHOICES,
                  tooltip="Custom uses the six values below; Default and Seamless blend replace them."),
        *(_setting_input(spec) for spec in SETTINGS),
    ),
    outputs=(OutputSpec("settings", SETTINGS_TYPE, "settings"),),
    validated=tuple(spec.snake_label for spec in SETTINGS),
)

APPLY_NODE = NodeSpec(
    node_id="SoftInpaintingApply",
    display_name="Apply Soft Inpainting",
    description=("Every sampler step, blends the model's prediction with the original latent through the "
                 "grey noise mask (the latent's noise_mask), instead of ComfyUI's hard paste."),
    inputs=(
        InputSpec("model", "MODEL"),
        InputSpec("settings", SETTINGS_TYPE),
    ),
    outputs=(OutputSpec("patched_model", "MODEL", "model", tooltip="A patched copy of the model."),),
)

COMPOSITE_NODE = NodeSpec(
    node_id="SoftInpaintingComposite",
    display_name="Soft Inpainting Composite",
    description=("After decoding: keeps the original pixels where the sampled latent did not change, and "
                 "shows the new pixels where it did, with a smooth transition."),
    inputs=(
        InputSpec("settings", SETTINGS_TYPE),
        InputSpec("model", "MODEL",
                  tooltip="Its latent format scales the latents, as the WebUI measures them."),
        InputSpec("original_image", "IMAGE", display_name="original image"),
        InputSpec("decoded_image", "IMAGE", display_name="decoded image"),
        InputSpec("original_latent", "LATENT", display_name="original latent"),
        InputSpec("sampled_latent", "LATENT", display_name="sampled latent"),
        InputSpec("mask", "MASK", optional=True,
                  tooltip="Default: the sampled latent's noise_mask (1 = regenerate)."),
    ),
    outputs=(
        OutputSpec("composite", "IMAGE", "image"),
        OutputSpec("adaptive_mask", "MASK", "mask",
                   tooltip="The adaptive compositing mask: 1 = the new pixels are shown."),
    ),
)

NODES = (SETTINGS_NODE, APPLY_NODE, COMPOSITE_NODE)
