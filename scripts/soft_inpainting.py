"""WebUI glue: the always-on "Soft Inpainting" script (SPEC §3–§6).

It reads the host's job object, calls the core, and writes results back. Everything one job
computes lives on that job (``p.soft_inpainting``), never on this Script object, which the host
shares between all requests.

It is on img2img and on txt2img. A txt2img job has no mask, so nothing acts on it; the accordion is
there so that the inpainting passes other extensions run on the finished picture (ADetailer's, which
carry this script by its file name, ``soft_inpainting``) get the user's settings
(``soft_inpainting_webui.inner_passes``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gradio as gr
from modules import images, processing, script_callbacks, scripts, shared
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
    CHANNELS_INFOTEXT_KEY,
    ENABLED_INFOTEXT_KEY,
    FLOW_INFOTEXT_KEY,
    NOISE_LEVEL_INFOTEXT_KEYS,
    SETTINGS,
    TIMESTEP_INFOTEXT_KEY,
    TIMESTEP_LABEL,
    ParsedArgs,
    SettingsError,
    noise_level_flag_from_infotext,
    parse_script_args,
    settings_from_infotext,
)
from lib_soft_inpainting.ui import TXT2IMG_INTRO, TXT2IMG_LABEL, build_controls
from soft_inpainting_webui import (
    api,
    coexistence,
    host_paths,
    host_support,
    inner_passes,
    noise_levels,
    options,
    xyz,
)
from soft_inpainting_webui.job import JobState, job_state, start_job
from soft_inpainting_webui.latent_shapes import fold_frames, unfold_frames

TITLE = "Soft Inpainting"
ERROR_INFOTEXT_KEY = "Soft inpainting error"
# What an inner pass reports to its outer job's infotext is ours too.
OUR_INFOTEXT_KEYS = (ENABLED_INFOTEXT_KEY, *(s.infotext_key for s in SETTINGS), *NOISE_LEVEL_INFOTEXT_KEYS,
                     ERROR_INFOTEXT_KEY, "Soft inpainting note", inner_passes.USED_IN_KEY)
MISSING_HOOKS = host_support.missing_hooks(scripts)
if MISSING_HOOKS:
    print(host_support.too_old_message(TITLE, MISSING_HOOKS))

# The txt2img accordion's ids.
TXT2IMG_ELEM_ID_PREFIX = "txt2img_"


def processing_uses_inpainting(p: Any) -> bool:
    """An inpainting job has a mask in one of the forms the host keeps (SPEC §3)."""
    return any(getattr(p, name, None) is not None for name in ("image_mask", "mask", "nmask"))


def _picture_helpers() -> pictures.PictureHelpers:
    """The host's own resize, uncrop and flatten, so its upscaler settings and rounding apply."""
    return pictures.PictureHelpers(resize_image=images.resize_image, uncrop=processing.uncrop,
                                   flatten=images.flatten)


def _paste_reader(position: int):
    """A paste-back reader for control ``position`` (0 = enabled, 1–6 = sliders, 7 = the noise level
    conversion).

    Never raises: invalid or missing values fall back to defaults. An infotext without any soft
    inpainting key switches soft inpainting off and leaves the sliders alone; one without any of
    the conversion's keys (made with it off, or before it existed) pastes it back off, so the
    older picture is reproduced.
    """

    def read(params: dict[str, Any]) -> Any:
        if not any(key in params for key in (ENABLED_INFOTEXT_KEY, *(s.infotext_key for s in SETTINGS))):
            return False if position == 0 else None
        enabled, settings = settings_from_infotext(params)
        if position == 0:
            return enabled
        if position <= len(SETTINGS):
            return settings.values()[position - 1]
        return noise_level_flag_from_infotext(params)

    return read


def _set_generation_params(p: Any, entries: dict[str, Any]) -> None:
    """Replace our infotext entries with ``entries`` without mutating a dict other jobs may share
    (the X/Y/Z plot shallow-copies jobs, so their dicts are one object)."""
    kept = {k: v for k, v in (p.extra_generation_params or {}).items() if k not in OUR_INFOTEXT_KEYS}
    p.extra_generation_params = {**kept, **entries}


class Script(scripts.Script):
    """Soft inpainting for img2img's inpaint modes, and for the inpainting passes other extensions
    run on txt2img and img2img pictures."""

    def __init__(self) -> None:
        super().__init__()
        # The host builds every script before any UI (also in API-only mode, where on_before_ui
        # comes too late for the X/Y/Z plot's choices); registering is idempotent.
        if not MISSING_HOOKS:
            _register_axes()

    @property
    def section(self) -> str | None:
        """img2img: with the inpaint controls; txt2img: with the other always-on scripts (the host
        builds no "inpaint" section there)."""
        return "inpaint" if self.is_img2img else None

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> Any:
        return False if MISSING_HOOKS else scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any] | None:
        if is_img2img:
            controls = build_controls(InputAccordion, options.user_defaults(shared.opts),
                                      enabled_default=options.enabled_by_default(shared.opts),
                                      timestep_default=options.timestep_as_noise_level(shared.opts))
        else:  # collapsed and off whatever the Settings page says: a txt2img job has no mask
            controls = build_controls(InputAccordion, options.user_defaults(shared.opts),
                                      timestep_default=options.timestep_as_noise_level(shared.opts),
                                      elem_id_prefix=TXT2IMG_ELEM_ID_PREFIX, label=TXT2IMG_LABEL,
                                      intro=TXT2IMG_INTRO)
        self.infotext_fields = [(control, _paste_reader(i)) for i, control in enumerate(controls.inputs)]
        self.paste_field_names = controls.infotext_keys
        return controls.inputs

    # -- hooks, in the host's call order ---------------------------------------------------------

    def before_process(self, p: Any, *args: Any) -> None:
        """Before any script's ``process``: if the built-in extension is enabled on this job too,
        switch it off for the job and act alone (with its settings when ours are off)."""
        start_job(p, None)
        inner_passes.begin_job(p)
        message = coexistence.take_over_builtin(p, self)
        if message:
            print(message)

    def process(self, p: Any, *args: Any) -> None:
        """Validate once, switch off mask rounding, record the infotext (SPEC §4).

        A user's invalid setting is one console line, not an exception (the host would print a
        traceback): the job runs without soft inpainting and the error goes into the infotext.
        """
        start_job(p, None)
        outer = inner_passes.find_outer_job(p) if processing_uses_inpainting(p) else None
        try:
            parsed = _parse_with_overrides(p, args, outer)
        except SettingsError as error:
            _set_generation_params(p, {ERROR_INFOTEXT_KEY: str(error)})
            print(f"[{TITLE}] {error}: soft inpainting is off for this job")
            return
        if parsed.ignored:
            print(f"[{TITLE}] {parsed.ignored} argument(s) after the ones the extension defines are ignored")
        if not parsed.enabled or not processing_uses_inpainting(p):
            _set_generation_params(p, {})
            return
        convert = parsed.timestep_as_noise_level
        if convert is None:
            convert = options.timestep_as_noise_level(shared.opts)
        try:
            noise_level = _job_noise_level(p, convert)
        except noise_levels.UnsupportedModelError as error:
            message = f"{error}; switch off \"{TIMESTEP_LABEL}\" to use the sampler's sigma as is"
            _set_generation_params(p, {ERROR_INFOTEXT_KEY: message})
            print(f"[{TITLE}] {message}: soft inpainting is off for this job")
            return
        for note in parsed.settings.adjustments:
            print(f"[{TITLE}] {note}")
        p.mask_round = False
        entries = parsed.settings.infotext()
        if noise_level.is_flow:
            entries[FLOW_INFOTEXT_KEY] = True  # every step's schedule uses sigma / (1 - sigma)
        _set_generation_params(p, entries)
        start_job(p, JobState(parsed.settings, timestep_as_noise_level=convert, noise_level=noise_level))

    def process_before_every_sampling(self, p: Any, *args: Any, **kwargs: Any) -> None:
        """Forge-family hosts that hard-blend on their own: hand the sampler a neutral mask (it
        copies ``p.mask``/``p.nmask`` next), keeping the real one on the job state."""
        state = job_state(p)
        if state is None or not STEP_PATH.neutralises_sampler_mask:
            return
        host_paths.restore_masks(p, state.real_masks)  # a second batch: start from the real masks
        state.real_masks = host_paths.hand_sampler_neutral_masks(p)

    def on_mask_blend(self, p: Any, mba: scripts.MaskBlendArgs, *args: Any) -> None:
        """Every step: the soft blend replaces the host's hard one (SPEC §5)."""
        state = job_state(p)
        if state is None:
            return
        host_paths.restore_masks(p, state.real_masks)
        if mba.is_final_blend:
            mba.blended_latent = mba.current_latent
            return
        if STEP_PATH is host_paths.StepPath.CALLBACKS:
            return  # the blend of this step is done in on_cfg_after_cfg
        nmask = state.real_masks.nmask if state.real_masks is not None else mba.nmask
        sigma = _step_sigma(p, state, mba.denoiser, mba.sigma[0])
        mba.blended_latent = _soft_blend(state, mba.init_latent, mba.current_latent, nmask, sigma)

    def post_sample(self, p: Any, ps: scripts.PostSampleArgs, *args: Any) -> None:
        """Build this batch's compositing masks and overlays (SPEC §6); an inner pass then reports
        its infotext entries (all of them, the composite's included) to its outer job."""
        state = job_state(p)
        if state is None:
            return
        host_paths.restore_masks(p, state.real_masks)  # sampling may have ended before step 1
        nmask = getattr(p, "nmask", None)
        if nmask is not None:
            state.masks, state.overlays = _composite(p, state, ps.samples, fold_frames(nmask))
        outer = inner_passes.outer_job(p)
        if outer is not None:
            inner_passes.report(p, outer, OUR_INFOTEXT_KEYS)
            note = inner_passes.blur_note(p, outer)
            if note:
                print(f"[{TITLE}] {note}")

    def postprocess_maskoverlay(self, p: Any, ppmo: scripts.PostProcessMaskOverlayArgs, *args: Any) -> None:
        """Hand out this image's mask and overlay (SPEC §6); no overlay when the host's
        "overlay_inpaint" option is off (upstream pastes one regardless)."""
        state = job_state(p)
        if state is None or not (0 <= ppmo.index < len(state.masks)):
            return
        ppmo.mask_for_overlay = state.masks[ppmo.index]
        if getattr(shared.opts, "overlay_inpaint", True):
            ppmo.overlay_image = state.overlays[ppmo.index]
        state.previews.append(state.masks[ppmo.index])

    def postprocess(self, p: Any, processed: Any, *args: Any) -> None:
        """With the host's "return mask" options on, add each adaptive mask as a labelled image.

        Only for the job itself: ADetailer also calls ``postprocess`` with a copy of the job and a
        throw-away result once per batch, which must not take this job's previews."""
        inner_passes.end_job(p)
        state = job_state(p)
        if state is None or not state.previews or state.owner not in (None, id(p)):
            return
        if getattr(shared.opts, "return_mask", False) or getattr(shared.opts, "return_mask_composite", False):
            s = state.settings
            label = (f"Soft inpainting adaptive mask (threshold {s.composite_difference_threshold:g}, "
                     f"contrast {s.composite_difference_contrast:g}): white = generated")
            for mask in state.previews:
                processed.images.append(pictures.labelled_mask_preview(mask, label))
                # Keep images and infotexts aligned, so the gallery shows the right parameters.
                if getattr(processed, "infotexts", None):
                    processed.infotexts.append(processed.infotexts[0])
        state.previews = []


def _composite(p: Any, state: JobState, samples: Any, nmask: Any) -> tuple[list[Any], list[Any]]:
    """This batch's masks and overlays: adaptive from the latents, static when already decoded."""
    helpers = _picture_helpers()
    overlays = pictures.rebuild_overlay_images(p.init_images, shared.opts.img2img_background_color,
                                               p.paste_to, p.resize_mode, p.width, p.height, helpers)
    if getattr(samples, "already_decoded", False):
        result = pictures.static_composite(state.settings, nmask, overlays, len(samples),
                                           p.width, p.height, p.paste_to, helpers)
        return result.masks, result.overlays
    device = _post_sample_device(samples)
    reference = noise_levels.distance_reference_channels(state.timestep_as_noise_level)
    init_latent, latents = fold_frames(p.init_latent).to(device), fold_frames(samples).to(device)
    result = pictures.adaptive_composite(state.settings, nmask.to(device), init_latent, latents, overlays,
                                         p.width, p.height, p.paste_to, helpers, reference_channels=reference)
    if reference is not None and samples.shape[1] != reference:
        p.extra_generation_params[CHANNELS_INFOTEXT_KEY] = True
    return result.masks, result.overlays


def _job_noise_level(p: Any, convert: bool) -> Any:
    """How this job's model turns its sigma into a noise level (only asked with the conversion on:
    off, the sampler's sigma is used as is, whatever the model)."""
    if not convert:
        return noise_levels.SIGMA_IS_NOISE_LEVEL
    sd_model = getattr(p, "sd_model", None)
    if sd_model is None:
        sd_model = getattr(shared, "sd_model", None)
    return noise_levels.job_noise_level(sd_model)


def _step_sigma(p: Any, state: JobState, denoiser: Any, sigma: Any) -> Any:
    """The step's noise level (see ``soft_inpainting_webui.noise_levels``); a converted timestep is
    noted in the infotext."""
    sigma, timestep_converted = noise_levels.step_noise_level(
        state.noise_level, state.timestep_as_noise_level, denoiser, sigma)
    if timestep_converted:
        p.extra_generation_params[TIMESTEP_INFOTEXT_KEY] = True
    return sigma


def _soft_blend(state: JobState, init_latent: Any, current_latent: Any, nmask: Any, sigma: Any) -> Any:
    """SPEC §5 on this step; 5-D latents (Neo's video-VAE models) are blended frame by frame."""
    t = get_modified_nmask(state.settings, fold_frames(nmask).to(current_latent.device), sigma)
    blended = latent_blend(state.settings, fold_frames(init_latent), fold_frames(current_latent), t)
    return unfold_frames(blended, like=current_latent)


def _parse_with_overrides(p: Any, args: Any, outer: Any = None) -> ParsedArgs:
    """The job's arguments, with any X/Y/Z axis values laid over them (validated the same way); an
    inner pass built from scratch by another extension takes its outer job's axis values."""
    parsed = parse_script_args(args, defaults=options.user_defaults(shared.opts))
    overrides = xyz.overrides(p) or (xyz.overrides(outer) if outer is not None else {})
    if not overrides:
        return parsed
    enabled = overrides.pop(xyz.ENABLED_KEY, parsed.enabled)
    convert = overrides.pop(xyz.CONVERSION_KEY, parsed.timestep_as_noise_level)
    settings = SoftInpaintingSettings(**{**parsed.settings.as_dict(), **overrides})
    return replace(parsed, enabled=enabled, settings=settings, timestep_as_noise_level=convert)


def _post_sample_device(samples: Any) -> Any:
    """Where the post-sample stage runs: ``--soft-inpainting-device``, else the latents' device."""
    choice = options.post_sample_device(getattr(shared, "cmd_opts", None))
    if choice == "cpu" or (choice == "cuda" and not _cuda_available()):
        return "cpu"
    if choice == "cuda":
        return "cuda"
    return samples.device


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _on_ui_settings() -> None:
    options.register(shared, gr)


def _register_axes() -> None:
    """Add the X/Y/Z axes (idempotent); a plot script this extension cannot use costs one line."""
    try:
        message = xyz.register_axes(scripts.scripts_data)
    except Exception as error:  # an unknown plot layout must not stop the WebUI from starting
        message = f"X/Y/Z plot axes skipped: {type(error).__name__}: {error}"
    if message:
        print(f"[{TITLE}] {message}")


def _on_before_ui() -> None:
    _register_axes()


_STEP_RELAY = host_paths.StepRelay()


def _on_cfg_denoiser(params: Any) -> None:
    """Every step, after the host's input-side blend: the sampler holds its copy of the masks, so
    the job's real ones go back on it; on the callbacks path, note this step's sigma."""
    denoiser = getattr(params, "denoiser", None)
    p = getattr(denoiser, "p", None)
    state = job_state(p) if p is not None else None
    if state is None:
        _STEP_RELAY.take()
        return
    host_paths.restore_masks(p, state.real_masks)
    if STEP_PATH is host_paths.StepPath.CALLBACKS:
        init_latent = getattr(denoiser, "init_latent", None)
        sigma = _step_sigma(p, state, denoiser, params.sigma[0])
        _STEP_RELAY.put(state, sigma, init_latent if init_latent is not None else p.init_latent)


def _on_cfg_after_cfg(params: Any) -> None:
    """The callbacks path: this step's soft blend, on the prediction the host hands out."""
    pending = _STEP_RELAY.take()
    if pending is None:
        return
    state, sigma, init_latent = pending
    nmask = state.real_masks.nmask if state.real_masks is not None else None
    if nmask is not None:
        params.x = _soft_blend(state, init_latent, params.x, nmask, sigma)


def _on_app_started(_demo: Any, app: Any) -> None:
    if MISSING_HOOKS:
        return
    api.register_routes(app, title=TITLE, api_auth=bool(getattr(shared.cmd_opts, "api_auth", None)),
                        defaults=lambda: options.user_defaults(shared.opts))


def _register_callbacks() -> None:
    """Settings page, X/Y/Z axes, routes and, where the host needs them, the per-step callbacks."""
    _register_axes()  # the X/Y/Z script loads before extensions: its choices include ours in every mode
    script_callbacks.on_ui_settings(_on_ui_settings)
    script_callbacks.on_before_ui(_on_before_ui)
    script_callbacks.on_app_started(_on_app_started)
    if STEP_PATH is host_paths.StepPath.CALLBACKS:
        script_callbacks.on_cfg_denoiser(_on_cfg_denoiser)
        script_callbacks.on_cfg_after_cfg(_on_cfg_after_cfg)
    elif STEP_PATH.neutralises_sampler_mask:
        script_callbacks.on_cfg_denoiser(_on_cfg_denoiser)


# On a WebUI without the hooks (before 1.8.0) the extension has said so once and stays out of the way.
STEP_PATH, _STEP_PATH_MESSAGE = (host_paths.StepPath.HOOK, "") if MISSING_HOOKS else host_paths.detect()
if not MISSING_HOOKS:
    print(_STEP_PATH_MESSAGE)
    _register_callbacks()
