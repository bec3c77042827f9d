"""Loads the extension into the WebUI stand-in the way the host does, and builds jobs for it.

The host imports ``scripts/soft_inpainting.py`` by path (module name ``soft_inpainting.py``),
fires the ``on_ui_settings`` and ``on_before_ui`` callbacks, builds the img2img runner's UI (which
fixes each script's ``args_from``/``args_to``), and runs jobs through ``process_images``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from fake_model import FakeModel, with_forge_objects
from modules import (
    errors,
    processing,
    script_callbacks,
    scripts,
    sd_samplers_cfg_denoiser,
    shared,
    ui_components,
)
from modules.api import api
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
HOST = Path(__file__).resolve().parent / "host"
ADETAILER = HOST / "extensions" / "adetailer" / "scripts" / "!adetailer.py"
_A1111_DENOISER = sd_samplers_cfg_denoiser.CFGDenoiser


def load_by_path(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photo(size: tuple[int, int] = (64, 64), seed: int = 0) -> Image.Image:
    """A textured RGB picture (smooth gradients plus noise), so changes are measurable."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 7.0 + seed)
    g = 128 + 100 * np.cos(y / 5.0 - seed)
    b = 128 + 60 * np.sin((x + y) / 9.0) + rng.normal(0, 10, (h, w))
    return Image.fromarray(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))


def disc_mask(size: tuple[int, int] = (64, 64), box: tuple[int, int, int, int] = (20, 20, 44, 44)
              ) -> Image.Image:
    """A white ellipse on black: the host blurs it (``mask_blur``) into a grey transition."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return mask


class PhotoSwap(scripts.Script):
    """Test-only: every finished picture becomes a textured photo before ADetailer looks at it (the
    fake model paints flat colour, where an inner pass would have nothing to change)."""

    def title(self) -> str:
        return "Photo swap"

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible

    def postprocess_image(self, p: Any, pp: Any, *args: Any) -> None:
        pp.image = photo(pp.image.size, seed=1 + p.iteration * p.batch_size + p.batch_index)


@dataclass
class WebUI:
    """One started WebUI: the extension module, the X/Y/Z module, an img2img and a txt2img runner,
    and the ADetailer stand-in's module when loaded."""

    extension: ModuleType
    xyz: ModuleType | None
    runner: scripts.ScriptRunner
    extra_scripts: list[type] = field(default_factory=list)
    host: str = "a1111"

    def model(self, model: FakeModel | None = None) -> FakeModel:
        """``model`` (default: the SD-like :class:`FakeModel`) as this host holds it: the Forge
        family's carry ``forge_objects.unet.model.predictor``."""
        model = model if model is not None else FakeModel()
        return with_forge_objects(model) if self.host in FORGE_FAMILY else model

    @property
    def script(self) -> Any:
        return next(s for s in self.runner.alwayson_scripts if isinstance(s, self.extension.Script))

    def args(self, *values: Any, adetailer: dict[str, Any] | None = None,
             runner: scripts.ScriptRunner | None = None) -> list[Any]:
        """``script_args`` for a job: position 0, other scripts' UI defaults, then ``values`` for ours
        (short lists are filled from our UI defaults, as the UI always sends every control); with
        ``adetailer``, the ADetailer stand-in is enabled with those settings."""
        runner = runner or self.runner
        script_args = [0] + [c.value for c in runner.inputs[1:]]
        ours = next(s for s in runner.alwayson_scripts if isinstance(s, self.extension.Script))
        mine = list(values) + script_args[ours.args_from + len(values):ours.args_to]
        script_args[ours.args_from:ours.args_to] = mine
        if adetailer is not None:
            ad = next(s for s in runner.alwayson_scripts if isinstance(s, self.adetailer.AfterDetailerScript))
            script_args[ad.args_from:ad.args_to] = [True, False, {**self.adetailer.DEFAULTS, **adetailer}]
        return script_args

    @property
    def txt2img_runner(self) -> scripts.ScriptRunner:
        return scripts.scripts_txt2img

    @property
    def txt2img_script(self) -> Any:
        return next(s for s in self.txt2img_runner.alwayson_scripts if isinstance(s, self.extension.Script))

    @property
    def adetailer(self) -> ModuleType | None:
        """The ADetailer stand-in's module, when ``start_webui(adetailer=True)`` loaded it."""
        return next((d.module for d in scripts.scripts_data if d.path == str(ADETAILER)), None)

    def txt2img_args(self, *values: Any, adetailer: dict[str, Any] | None = None) -> list[Any]:
        return self.args(*values, adetailer=adetailer, runner=self.txt2img_runner)

    def txt2img_job(self, *, script_args: list[Any] | None = None, model: FakeModel | None = None,
                    **kwargs: Any) -> processing.StableDiffusionProcessingTxt2Img:
        if model is None:
            model = self.job(script_args=[]).sd_model  # the model an img2img job of this host gets
        return processing.StableDiffusionProcessingTxt2Img(
            model=model, scripts=self.txt2img_runner,
            script_args=script_args if script_args is not None else self.txt2img_args(True), **kwargs)

    def api_args(self, alwayson_scripts: dict[str, Any]) -> list[Any]:
        """``script_args`` the API builds from a request's ``alwayson_scripts``."""
        return api.init_script_args(alwayson_scripts, api.init_default_script_args(self.runner), self.runner)

    def job(self, *, script_args: list[Any] | None = None, init_images: list[Image.Image] | None = None,
            mask: Image.Image | str | None = "disc", model: FakeModel | None = None,
            **kwargs: Any) -> processing.StableDiffusionProcessingImg2Img:
        size = (kwargs.get("width", 64), kwargs.get("height", 64))
        init_images = init_images if init_images is not None else [photo(size)]
        if isinstance(mask, str):
            mask = disc_mask(init_images[0].size)
        return processing.StableDiffusionProcessingImg2Img(
            init_images, mask, model=self.model(model), scripts=self.runner,
            script_args=script_args if script_args is not None else self.args(True), **kwargs)

    def start_api(self) -> tuple[Any, api.Api]:
        """The API as the host starts it: a FastAPI app, ``Api(app, queue_lock)`` adding its routes,
        then the ``on_app_started`` callbacks (where the extension adds its route and check)."""
        from fastapi import FastAPI

        app = FastAPI()
        host_api = api.Api(app, threading.Lock())
        for callback in script_callbacks.callbacks_app_started:
            callback(None, app)
        return app, host_api

    def run(self, **kwargs: Any) -> tuple[processing.StableDiffusionProcessingImg2Img, processing.Processed]:
        p = self.job(**kwargs)
        return p, processing.process_images(p)


HOSTS = ("a1111", "forge_main", "neo", "forge_classic_2025_02")
FORGE_FAMILY = ("forge_main", "neo", "forge_classic_2025_02")


def _use_host(host: str, accordion: str) -> None:
    """Put the variant's denoiser (and ``InputAccordion``) in the stand-in's modules."""
    if host not in HOSTS:
        raise ValueError(f"unknown host {host!r}")
    sd_samplers_cfg_denoiser.CFGDenoiser = _A1111_DENOISER
    processing.StableDiffusionProcessingImg2Img.latent_mask_batch_axis = False
    if host != "a1111":
        variant = importlib.import_module(f"variants.{host}")
        sd_samplers_cfg_denoiser.CFGDenoiser = variant.CFGDenoiser
        processing.StableDiffusionProcessingImg2Img.latent_mask_batch_axis = getattr(
            variant, "LATENT_MASK_BATCH_AXIS", False)
    ui_components.InputAccordion = ui_components.InputAccordionImpl
    if accordion == "function":
        ui_components.InputAccordion = importlib.import_module("variants.forge_main").InputAccordion


def _load_xyz(layout: str) -> ModuleType:
    """The X/Y/Z script, loaded as the host loads scripts: by path, its folder first on sys.path."""
    if layout == "a1111":
        path, basedir = HOST / "xyz_grid.py", HOST
    else:
        basedir = HOST / "variants" / "xyz_classic"
        path = basedir / "scripts" / "xyz_grid.py"
        for name in [n for n in sys.modules if n == "lib_xyz" or n.startswith("lib_xyz.")]:
            del sys.modules[name]
    saved = list(sys.path)
    sys.path.insert(0, str(basedir))
    try:
        module = load_by_path(path, "xyz_grid.py")
    finally:
        sys.path[:] = saved
    script_class = next(v for v in vars(module).values()
                        if isinstance(v, type) and issubclass(v, scripts.Script) and v is not scripts.Script)
    scripts.scripts_data.append(scripts.ScriptClassData(script_class, str(path), str(basedir), module))
    return module


def start_webui(*, with_xyz: bool = True, builtin_first: type | None = None,
                options: dict[str, Any] | None = None, cmd_opts: dict[str, Any] | None = None,
                host: str = "a1111", xyz_layout: str = "a1111", accordion: str = "class",
                api_only: bool = False, adetailer: bool = False, photo_swap: bool = False,
                ours_first: bool = False) -> WebUI:
    """A fresh host with the extension loaded (and the X/Y/Z script, and optionally another
    always-on script loaded before ours, such as the built-in extension's).

    ``host`` picks the denoiser variant (``tests/host/variants``), ``xyz_layout`` "classic" loads
    Forge Classic's ``lib_xyz`` layout, ``accordion`` "function" gives Forge ``main``'s
    ``InputAccordion``; ``api_only`` builds the script UIs before ``on_before_ui``, as ``--nowebui``.
    ``adetailer`` loads the ADetailer stand-in (``host/extensions/adetailer``) before the other
    scripts, as its ``!`` file name does; ``photo_swap`` puts :class:`PhotoSwap` before it;
    ``ours_first`` puts this extension before both.
    """
    _use_host(host, accordion)
    shared.reset()
    for key, value in (cmd_opts or {}).items():
        setattr(shared.cmd_opts, key, value)
    errors.reported.clear()
    script_callbacks.clear()
    scripts.scripts_data.clear()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    xyz = _load_xyz(xyz_layout) if with_xyz else None
    extension_path = ROOT / "scripts" / "soft_inpainting.py"
    extension = load_by_path(extension_path, "soft_inpainting.py")
    scripts.scripts_data.append(scripts.ScriptClassData(extension.Script, str(extension_path), str(ROOT),
                                                        extension))
    ad_module = None
    if adetailer:
        ad_module = load_by_path(ADETAILER, "!adetailer.py")
        scripts.scripts_data.append(scripts.ScriptClassData(ad_module.AfterDetailerScript, str(ADETAILER),
                                                            str(ADETAILER.parents[1]), ad_module))
    scripts.scripts_data.append(scripts.ScriptClassData(PhotoSwap, "photo_swap.py", str(HOST), None))
    for callback in script_callbacks.callbacks_ui_settings:
        callback()
    for key, value in (options or {}).items():
        setattr(shared.opts, key, value)
    if not api_only:
        for callback in script_callbacks.callbacks_before_ui:
            callback()

    xyz_classes = [d.script_class for d in scripts.scripts_data if d.module is xyz] if xyz else []
    before = [PhotoSwap] if photo_swap else []
    before += [ad_module.AfterDetailerScript] if ad_module is not None else []
    ours = [builtin_first, extension.Script]
    order = [*ours, *before, *xyz_classes] if ours_first else [*before, *xyz_classes, *ours]
    runner = scripts.ScriptRunner()
    runner.initialize_scripts([c for c in order if c is not None])
    runner.setup_ui()
    txt2img = scripts.ScriptRunner()
    txt2img.initialize_scripts([c for c in order if c is not None], is_img2img=False)
    txt2img.setup_ui()
    scripts.scripts_img2img, scripts.scripts_txt2img = runner, txt2img
    shared.sd_model = FakeModel()
    if api_only:
        for callback in script_callbacks.callbacks_before_ui:
            callback()
    return WebUI(extension=extension, xyz=xyz, runner=runner, host=host)
