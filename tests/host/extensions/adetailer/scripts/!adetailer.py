"""An ADetailer stand-in: how ADetailer **25.3.0** (Bing-su/adetailer, ``scripts/!adetailer.py``,
``aaaaaa/helper.py``, ``aaaaaa/p_method.py``) runs its inner inpainting passes, reduced to what soft
inpainting meets. The file name is ADetailer's (the ``!`` sorts it first among scripts).

- ``ui``: ``[enable, skip img2img, one dict of settings]`` (ADetailer's own argument shape; one tab).
- ``process(p)``: when enabled, records its settings in the outer job's ``extra_generation_params``
  ("ADetailer model", "ADetailer mask blur", …, "ADetailer version"), which is how they reach the
  final infotext.
- ``postprocess_image(p, pp)``, for the picture being post-processed: at the first picture of a
  batch it calls the runner's ``postprocess`` with ``copy(p)`` and an empty result; it detects
  regions (here: ``detector(image)`` gives boxes, a test sets it), makes one mask per region (a
  white box grown by ``ad_dilate_erode``), builds one inner ``StableDiffusionProcessingImg2Img``
  (init image = the picture, ``mask_blur = ad_mask_blur``, ``inpaint_full_res =
  ad_inpaint_only_masked`` with its padding, ``inpainting_fill`` 1, batch 1, the outer job's size,
  steps, sampler and this picture's seed, ``extra_generation_params`` = the outer job's entries that
  are not callables), whose script runner is ``copy(p.scripts)`` keeping only the always-on scripts
  whose file name stem is in its list (its built-in ``hypertile_script,soft_inpainting``) and whose
  ``script_args`` are a copy of the outer job's; ``_ad_inner`` and ``_ad_disabled`` are set on it.
  For each region ``p2 = copy(i2i)``, ``p2.image_mask = mask``, ``process_images(p2)``, and the next
  region starts from the result; ``pp.image`` becomes the last result. At the last picture of a batch
  it calls the runner's ``before_process`` and ``process`` with ``copy(p)``.
- On an img2img inpaint job without "inpaint only masked", regions that miss the job's mask are
  dropped (``inpaint_mask_filter``).
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from modules import processing, scripts, shared
from PIL import Image, ImageDraw

VERSION = "25.3.0"
BUILTIN_SCRIPT = "hypertile_script,soft_inpainting"
DEFAULTS = {"ad_model": "mediapipe_face_full", "ad_dilate_erode": 4, "ad_mask_blur": 4,
            "ad_denoising_strength": 0.4, "ad_inpaint_only_masked": True,
            "ad_inpaint_only_masked_padding": 32}


def detector(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """The regions found in ``image`` (x1, y1, x2, y2); tests replace this."""
    w, h = image.size
    return [(w // 4, h // 4, w // 2, h // 2)]


def region_mask(size: tuple[int, int], box: tuple[int, int, int, int], grow: int) -> Image.Image:
    x1, y1, x2, y2 = box
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((x1 - grow, y1 - grow, x2 + grow, y2 + grow), fill=255)
    return mask


def copy_extra_params(extra_params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra_params.items() if not callable(v)}


class AfterDetailerScript(scripts.Script):
    def title(self):
        return "ADetailer"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return [gr.Checkbox(value=False, label="Enable ADetailer"),
                gr.Checkbox(value=False, label="Skip img2img"), gr.State(value=dict(DEFAULTS))]

    @staticmethod
    def _settings(args: tuple[Any, ...]) -> dict[str, Any] | None:
        if not args or args[0] is not True:
            return None
        found = [a for a in args if isinstance(a, dict)]
        return {**DEFAULTS, **(found[0] if found else {})}

    def process(self, p, *args):
        if getattr(p, "_ad_disabled", False):
            return
        settings = self._settings(args)
        if settings is None:
            p._ad_disabled = True
            return
        p.extra_generation_params.update({
            "ADetailer model": settings["ad_model"], "ADetailer dilate erode": settings["ad_dilate_erode"],
            "ADetailer mask blur": settings["ad_mask_blur"],
            "ADetailer denoising strength": settings["ad_denoising_strength"],
            "ADetailer inpaint only masked": settings["ad_inpaint_only_masked"],
            "ADetailer inpaint padding": settings["ad_inpaint_only_masked_padding"],
            "ADetailer version": VERSION})

    def script_filter(self, p):
        runner = copy(p.scripts)
        script_args = type(p.script_args)(copy(a) for a in p.script_args)
        names = set(shared.opts.data.get("ad_script_names", "").split(",") + BUILTIN_SCRIPT.split(","))
        runner.alwayson_scripts = [s for s in runner.alwayson_scripts
                                   if s.filename is not None and Path(s.filename).stem in names]
        return runner, script_args

    def get_i2i_p(self, p, settings, image):
        i = p.iteration * p.batch_size + p.batch_index
        i2i = processing.StableDiffusionProcessingImg2Img(
            [image], None, model=p.sd_model, resize_mode=0,
            denoising_strength=settings["ad_denoising_strength"],
            mask_blur=settings["ad_mask_blur"], inpainting_fill=1,
            inpaint_full_res=settings["ad_inpaint_only_masked"],
            inpaint_full_res_padding=settings["ad_inpaint_only_masked_padding"], inpainting_mask_invert=0,
            seed=p.seed + i, sampler_name=p.sampler_name, batch_size=1, n_iter=1, steps=p.steps,
            width=p.width, height=p.height,
            extra_generation_params=copy_extra_params(p.extra_generation_params))
        i2i.scripts, i2i.script_args = self.script_filter(p)
        i2i._ad_disabled = True
        i2i._ad_inner = True
        return i2i

    def postprocess_image(self, p, pp, *args):
        settings = self._settings(args)
        if getattr(p, "_ad_disabled", False) or settings is None:
            return
        pp.image = pp.image.convert("RGB")
        if p.batch_index == 0:  # need_call_postprocess
            p.scripts.postprocess(copy(p), processing.Processed(p, [], []))
        grow = settings["ad_dilate_erode"] // 2
        masks = [region_mask(pp.image.size, box, grow) for box in detector(pp.image)]
        if getattr(p, "image_mask", None) is not None and not getattr(p, "inpaint_full_res", False):
            outer_mask = np.array(p.image_mask.convert("L").resize(pp.image.size)) > 127
            masks = [m for m in masks if (outer_mask & (np.array(m) > 127)).any()]
        i2i = self.get_i2i_p(p, settings, pp.image)
        processed = None
        p2 = copy(i2i)
        for mask in masks:
            p2.image_mask = mask
            try:
                processed = processing.process_images(p2)
            finally:
                p2.close()
            p2 = copy(i2i)
            p2.init_images = [processed.images[0]]
        if processed is not None:
            pp.image = processed.images[0]
        if p.batch_index == p.batch_size - 1:  # need_call_process
            copy_p = copy(p)
            p.scripts.before_process(copy_p)
            p.scripts.process(copy_p)
