"""``modules.scripts``: the hook argument classes, the ``Script`` base, and the always-on runner.

The runner mirrors ``ScriptRunner``: each hook gets ``p.script_args[args_from:args_to]`` and runs
inside ``try/except`` that reports the error and carries on with the job (``errors.report``).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import gradio as gr

from . import errors

AlwaysVisible = object()


class MaskBlendArgs:
    def __init__(self, current_latent, nmask, init_latent, mask, blended_latent, denoiser=None, sigma=None):
        self.current_latent = current_latent
        self.nmask = nmask
        self.init_latent = init_latent
        self.mask = mask
        self.blended_latent = blended_latent
        self.denoiser = denoiser
        self.is_final_blend = denoiser is None
        self.sigma = sigma


class PostSampleArgs:
    def __init__(self, samples):
        self.samples = samples


class PostprocessImageArgs:
    def __init__(self, image):
        self.image = image


class PostProcessMaskOverlayArgs:
    def __init__(self, index, mask_for_overlay, overlay_image):
        self.index = index
        self.mask_for_overlay = mask_for_overlay
        self.overlay_image = overlay_image


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    infotext_fields = None
    paste_field_names = None

    def title(self):
        raise NotImplementedError

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def on_mask_blend(self, p, mba: MaskBlendArgs, *args):
        pass

    def post_sample(self, p, ps: PostSampleArgs, *args):
        pass

    def postprocess_image(self, p, pp: PostprocessImageArgs, *args):
        pass

    def postprocess_maskoverlay(self, p, ppmo: PostProcessMaskOverlayArgs, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass


scripts_txt2img: ScriptRunner | None = None  # set at start-up (the harness does it)
scripts_img2img: ScriptRunner | None = None

ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data: list[ScriptClassData] = []


class ScriptRunner:
    """The img2img runner: always-on scripts, their UI (which fixes ``args_from``/``args_to``),
    and the hooks the extension implements."""

    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.alwayson_scripts: list[Script] = []
        self.selectable_scripts: list[Script] = []
        self.inputs: list[Any] = [None]  # position 0: the selectable script's index
        self.infotext_fields: list[tuple[Any, Any]] = []
        self.paste_field_names: list[str] = []

    def initialize_scripts(self, script_classes: list[type], is_img2img: bool = True) -> None:
        paths = {data.script_class: data.path for data in scripts_data}
        for script_class in script_classes:
            script = script_class()
            script.filename = paths.get(script_class)  # the script file's path, as the host sets it
            script.is_img2img, script.is_txt2img = is_img2img, not is_img2img
            script.tabname = "img2img" if is_img2img else "txt2img"
            if script.show(script.is_img2img) is AlwaysVisible:
                script.alwayson = True
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
            elif script.show(script.is_img2img):
                self.scripts.append(script)
                self.selectable_scripts.append(script)

    def setup_ui(self) -> None:
        """Build every script's UI in one Blocks context, as the img2img tab does."""
        with gr.Blocks():
            for script in self.alwayson_scripts:
                script.args_from = len(self.inputs)
                controls = script.ui(script.is_img2img) or []
                self.inputs.extend(controls)
                script.args_to = len(self.inputs)
                self.infotext_fields += script.infotext_fields or []
                self.paste_field_names += script.paste_field_names or []
            for script in self.selectable_scripts:  # after the always-on ones, as the host does
                script.args_from = len(self.inputs)
                self.inputs.extend(script.ui(script.is_img2img) or [])
                script.args_to = len(self.inputs)

    def _run(self, hook: str, p: Any, *hook_args: Any, **hook_kwargs: Any) -> None:
        for script in self.alwayson_scripts:
            try:
                script_args = p.script_args[script.args_from:script.args_to]
                getattr(script, hook)(p, *hook_args, *script_args, **hook_kwargs)
            except Exception:
                errors.report(f"Error running {hook}: {script.filename}", exc_info=True)

    def before_process(self, p):
        self._run("before_process", p)

    def process(self, p):
        self._run("process", p)

    def process_before_every_sampling(self, p, **kwargs):
        self._run("process_before_every_sampling", p, **kwargs)

    def on_mask_blend(self, p, mba: MaskBlendArgs):
        self._run("on_mask_blend", p, mba)

    def post_sample(self, p, ps: PostSampleArgs):
        self._run("post_sample", p, ps)

    def postprocess_image(self, p, pp: PostprocessImageArgs):
        self._run("postprocess_image", p, pp)

    def postprocess_maskoverlay(self, p, ppmo: PostProcessMaskOverlayArgs):
        self._run("postprocess_maskoverlay", p, ppmo)

    def postprocess(self, p, processed):
        self._run("postprocess", p, processed)
