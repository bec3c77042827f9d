"""WebUI glue: the always-on "Soft Inpainting" script (SPEC §3–§6).

It reads the host's job object, calls the core, and writes results back. Everything one job
computes lives on that job (``p.soft_inpainting``), never on this Script object, which the host
shares between all requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import modules.scripts as scripts
from modules import images, processing, shared
from modules.ui_components import InputAccordion

from lib_soft_inpainting import (  # noqa: F401  (re-exported: SPEC §8)
    SoftInpaintingSettings,
    get_gaussian_kernel,
    get_modified_nmask,
    latent_blend,
    latent_difference_masks,
    pictures,
    smootherstep,
    smoothstep,
    weighted_histogram_filter,
)
from lib_soft_inpainting.settings import (
    DEFAULT_SETTINGS,
    ENABLED_INFOTEXT_KEY,
    SETTINGS,
    SettingsError,
    parse_script_args,
    settings_from_infotext,
)
from lib_soft_inpainting.ui import build_controls

TITLE = "Soft Inpainting"
JOB_ATTRIBUTE = "soft_inpainting"
ERROR_INFOTEXT_KEY = "Soft inpainting error"


@dataclass
class JobState:
    """What one job computed: its settings, then the masks and overlays of the current batch."""

    settings: SoftInpaintingSettings
    masks: list[Any] = field(default_factory=list)
    overlays: list[Any] = field(default_factory=list)


def job_state(p: Any) -> JobState | None:
    """This job's soft-inpainting state, or None when soft inpainting does not act on it."""
    state = getattr(p, JOB_ATTRIBUTE, None)
    return state if isinstance(state, JobState) else None


def processing_uses_inpainting(p: Any) -> bool:
    """An inpainting job has a mask in one of the forms the host keeps (SPEC §3)."""
    return any(getattr(p, name, None) is not None for name in ("image_mask", "mask", "nmask"))


def _picture_helpers() -> pictures.PictureHelpers:
    """The host's own resize, uncrop and flatten, so its upscaler settings and rounding apply."""
    return pictures.PictureHelpers(resize_image=images.resize_image, uncrop=processing.uncrop,
                                   flatten=images.flatten)


def _paste_value(spec_index: int):
    """A paste-back reader for one control that never raises (bad values fall back to defaults)."""

    def read(params: dict[str, Any]) -> Any:
        if ENABLED_INFOTEXT_KEY not in params and not any(s.infotext_key in params for s in SETTINGS):
            return False if spec_index < 0 else None
        enabled, settings = settings_from_infotext(params)
        return enabled if spec_index < 0 else settings.values()[spec_index]

    return read


class Script(scripts.Script):
    """Soft inpainting for img2img's inpaint modes."""

    def __init__(self) -> None:
        super().__init__()
        self.section = "inpaint"

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible if is_img2img else False

    def ui(self, is_img2img: bool) -> list[Any] | None:
        if not is_img2img:
            return None
        controls = build_controls(InputAccordion, DEFAULT_SETTINGS)
        self.infotext_fields = [(controls.enabled, _paste_value(-1)),
                                *((slider, _paste_value(i)) for i, slider in enumerate(controls.sliders))]
        self.paste_field_names = [ENABLED_INFOTEXT_KEY, *(spec.infotext_key for spec in SETTINGS)]
        return controls.inputs

    # -- hooks, in the host's call order ---------------------------------------------------------

    def process(self, p: Any, *args: Any) -> None:
        """Validate once, switch off mask rounding, record the infotext (SPEC §4)."""
        setattr(p, JOB_ATTRIBUTE, None)
        try:
            parsed = parse_script_args(args)
        except SettingsError as error:
            p.extra_generation_params[ERROR_INFOTEXT_KEY] = str(error)
            raise SettingsError(f"{error} — soft inpainting is off for this job") from error
        if not parsed.enabled or not processing_uses_inpainting(p):
            return
        for note in parsed.settings.adjustments:
            print(f"[{TITLE}] {note}")
        p.mask_round = False
        p.extra_generation_params.update(parsed.settings.infotext())
        setattr(p, JOB_ATTRIBUTE, JobState(parsed.settings))

    def on_mask_blend(self, p: Any, mba: scripts.MaskBlendArgs, *args: Any) -> None:
        """Every step: the soft blend replaces the host's hard one (SPEC §5)."""
        state = job_state(p)
        if state is None:
            return
        if mba.is_final_blend:
            mba.blended_latent = mba.current_latent
            return
        t = get_modified_nmask(state.settings, mba.nmask, mba.sigma[0])
        mba.blended_latent = latent_blend(state.settings, mba.init_latent, mba.current_latent, t)

    def post_sample(self, p: Any, ps: scripts.PostSampleArgs, *args: Any) -> None:
        """Build this batch's compositing masks and overlays (SPEC §6)."""
        state = job_state(p)
        nmask = getattr(p, "nmask", None)
        if state is None or nmask is None:
            return
        helpers = _picture_helpers()
        overlays = pictures.rebuild_overlay_images(p.init_images, shared.opts.img2img_background_color,
                                                   p.paste_to, p.resize_mode, p.width, p.height, helpers)
        if getattr(ps.samples, "already_decoded", False):
            result = pictures.static_composite(state.settings, nmask, overlays, len(ps.samples),
                                               p.width, p.height, p.paste_to, helpers)
        else:
            result = pictures.adaptive_composite(state.settings, nmask, p.init_latent, ps.samples, overlays,
                                                 p.width, p.height, p.paste_to, helpers)
        state.masks, state.overlays = result.masks, result.overlays

    def postprocess_maskoverlay(self, p: Any, ppmo: scripts.PostProcessMaskOverlayArgs, *args: Any) -> None:
        """Hand out this image's mask and overlay (SPEC §6); no overlay when the host's
        "overlay_inpaint" option is off (upstream pastes one regardless)."""
        state = job_state(p)
        if state is None or not (0 <= ppmo.index < len(state.masks)):
            return
        ppmo.mask_for_overlay = state.masks[ppmo.index]
        if getattr(shared.opts, "overlay_inpaint", True):
            ppmo.overlay_image = state.overlays[ppmo.index]
