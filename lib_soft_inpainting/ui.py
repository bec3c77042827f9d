"""The settings accordion, built from the settings table (gradio 3.41, imported lazily).

The host's accordion class (the WebUI's ``InputAccordion``) is passed in, so this module never
imports the WebUI; the math modules never import gradio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .settings import (
    ELEM_ID_PREFIX,
    ENABLED_INFOTEXT_KEY,
    ENABLED_LABEL,
    NOISE_LEVEL_INFOTEXT_KEYS,
    PRESETS,
    SETTINGS,
    TIMESTEP_LABEL,
    SoftInpaintingSettings,
)

PRESET_LABEL = "Preset"
CUSTOM_PRESET = "Custom"

INTRO = ("Soft inpainting lets a grey, blurred mask mean opacity: black keeps the original, white "
         "regenerates, grey blends. **High _Mask blur_ values are recommended.**")

# txt2img: a txt2img picture has no mask, so the accordion there is for the inpainting passes other
# extensions run on the finished picture, such as ADetailer's face and hand fixes.
TXT2IMG_LABEL = "Soft inpainting (ADetailer and other inpainting passes)"
TXT2IMG_INTRO = ("On txt2img, soft inpainting acts only in the inpainting passes other extensions run "
                 "on the finished picture, such as **ADetailer**'s face and hand fixes: their mask's "
                 "edge blends instead of showing a seam. The txt2img picture itself is not changed. "
                 "**Raise ADetailer's _Inpaint mask blur_ to 16 or more** (32 works well): its default "
                 "of 4 leaves almost no grey edge to blend.")

HELP = """
### Denoising
**Schedule bias** — when the original is preserved during denoising. Below 1: more near the end
(low noise). 1: in proportion to the noise level. Above 1: more at the start.

**Preservation strength** — how strongly grey (partially masked) regions keep the original.
Low favours new content, high favours the original. Tune it together with schedule bias, CFG and
denoising strength.

**Transition contrast boost** — a plain blend of two latents loses contrast where they differ.
Higher values keep the stronger of the two magnitudes: crisper transitions, possibly over-saturated.

### Pixel composite
After sampling, each region's change is measured; where little changed, the original pixels are
kept exactly.

**Mask influence** — 0: only the measured change decides. 1: follow the painted mask closely.

**Difference threshold** — the change at which the original drops below 50% opacity. Low: only
nearly identical regions keep the original. High: regions may change a lot and still blend in.

**Difference contrast** — how sharp the step between kept and regenerated regions is. Low: long,
gradual transitions (may ghost). High: abrupt transitions.

### Noise level conversion
The schedule is made for the noise levels of SD models (about 14.6 down to 0). Flow-matching models
(SD3, Flux, Chroma, Qwen-Image, …) report a sigma from 1 to 0, whose noise level is
sigma / (1 − sigma); DDIM, PLMS and UniPC report a timestep (0–999). With the checkbox on (the
default, see Settings) both are converted first, so grey regions blend as they do with SD and Euler,
and the difference threshold means the same per-channel change for 16-channel latents as for 4.
Off: the sampler's value as is, as the WebUI's built-in soft inpainting does. SD1, SD2 and SDXL with
other samplers give the same picture either way.

"""


@dataclass
class Controls:
    """The components the script returns (``enabled``, the six sliders, the timestep flag) and the
    preset box (not an argument: a preset only moves the sliders)."""

    enabled: Any
    sliders: list[Any]
    timestep: Any
    preset: Any

    @property
    def inputs(self) -> list[Any]:
        return [self.enabled, *self.sliders, self.timestep]

    @property
    def infotext_keys(self) -> list[str]:
        return [ENABLED_INFOTEXT_KEY, *(spec.infotext_key for spec in SETTINGS), *NOISE_LEVEL_INFOTEXT_KEYS]


def preset_name(values: tuple[float, ...]) -> str:
    """The preset whose six values these are, or "Custom"."""
    for name, preset in PRESETS.items():
        if tuple(float(v) for v in values) == preset.values():
            return name
    return CUSTOM_PRESET


def preset_updates(name: str) -> list[dict[str, Any]]:
    """The six slider updates for a preset; "Custom" (or an unknown name) leaves them alone."""
    import gradio as gr

    preset = PRESETS.get(name)
    if preset is None:
        return [gr.update() for _ in SETTINGS]
    return [gr.update(value=v) for v in preset.values()]


def build_controls(accordion_cls: Callable[..., Any], defaults: SoftInpaintingSettings,
                   enabled_default: bool = False, timestep_default: bool = True, *,
                   elem_id_prefix: str = "", label: str = ENABLED_LABEL, intro: str = INTRO) -> Controls:
    """Build the accordion with the six sliders inside the current gradio Blocks context.

    ``elem_id_prefix`` goes before every element id, so a second accordion on the same page (the
    txt2img one) has ids of its own; ``label`` and ``intro`` are the accordion's title and first text.
    """
    import gradio as gr

    prefix = elem_id_prefix + ELEM_ID_PREFIX
    accordion = accordion_cls(enabled_default, label=label, elem_id=prefix + "enabled")
    with accordion as enabled, gr.Group():
        gr.Markdown(intro)
        preset = gr.Dropdown(label=PRESET_LABEL, choices=[*PRESETS, CUSTOM_PRESET],
                             value=preset_name(defaults.values()), elem_id=prefix + "preset",
                             interactive=True)
        sliders = []
        for spec in SETTINGS:
            if spec.name == "composite_mask_influence":
                gr.Markdown("### Pixel composite")
            sliders.append(gr.Slider(label=spec.label, info=spec.help, minimum=spec.minimum,
                                     maximum=spec.maximum, step=spec.step,
                                     value=getattr(defaults, spec.name),
                                     elem_id=elem_id_prefix + spec.elem_id))
        timestep = gr.Checkbox(label=TIMESTEP_LABEL, value=timestep_default,
                               elem_id=prefix + "timestep_as_noise_level")
        with gr.Accordion("Help", open=False):
            gr.Markdown(HELP)

    preset.change(fn=preset_updates, inputs=[preset], outputs=sliders, show_progress=False)
    return Controls(enabled=enabled, sliders=sliders, timestep=timestep, preset=preset)
