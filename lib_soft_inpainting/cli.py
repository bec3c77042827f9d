"""Command line: ``python -m lib_soft_inpainting run|demo``.

- ``run IMAGE MASK --prompt … --model PATH_OR_ID``: soft inpainting with a diffusers model (SD
  1.x/2.x, SDXL, SD3/3.5, Flux, Flux Fill; a folder, a single checkpoint file or a hub id);
  writes a PNG, JPEG or WebP (by ``--out``'s extension) carrying the generation parameters
  where the WebUI's PNG Info reads them. ``--batch-size``/``--n-iter`` make several candidates
  (seeds seed, seed + 1, …) and a labelled contact sheet. Needs the ``diffusers`` extra.
- ``demo --out DIR``: both stages on a bundled photo with a built-in weight-free model; no
  download, core dependencies only.

The six settings are flags named by their label (``--schedule-bias``, or by their python name,
``--mask-blend-power``); defaults, ranges, help and ``--preset`` come from the settings table.
Problems the user can fix (missing or unreadable files, mismatched sizes, a model that cannot be
loaded, invalid values) end with exit code 2 and one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import inspect
import json
import math
import os
import random
import socket
import sys
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .contact_sheet import contact_sheet
from .integrations.infotext import PICTURE_FORMATS, format_infotext, picture_format, save_with_infotext
from .integrations.workflow import blur_mask, is_hard_edged, mask_from_picture
from .settings import (
    DEFAULT_SETTINGS,
    PRESETS,
    SETTINGS,
    SettingsError,
    SoftInpaintingSettings,
    coerce_setting,
    lookup_preset,
)

__all__ = ["CliError", "build_parser", "main"]

PROG = "python -m lib_soft_inpainting"
EXIT_USAGE = 2

# WebUI sampler names and the diffusers schedulers that implement them.
SAMPLERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # choice: (infotext name, scheduler class, config overrides)
    "euler": ("Euler", "EulerDiscreteScheduler", {}),
    "euler_a": ("Euler a", "EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPM++ 2M", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIM", "DDIMScheduler", {}),
    "unipc": ("UniPC", "UniPCMultistepScheduler", {}),
    "heun": ("Heun", "HeunDiscreteScheduler", {}),
    "lms": ("LMS", "LMSDiscreteScheduler", {}),
}
SCHEDULE_TYPE = {"dpmpp_2m": "Karras"}
DEFAULT_SAMPLER = "dpmpp_2m"
DEFAULT_CFG = 7.0
# Flow-matching models (SD3, Flux) keep the scheduler they come with: Euler for flow matching.
FLOW_SAMPLER = "euler"
MAX_MASK_BLUR = 64  # the WebUI's slider
ADVISED_MASK_BLUR = 32  # the accordion's one-click advice, for masks blurred below 16
LOW_MASK_BLUR = 16
MAX_SEED = 2 ** 32 - 1
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
HUB_TIMEOUT_S = 3.0
EXAMPLES = f"""examples:
  {PROG} demo --out demo/
  {PROG} run photo.png mask.png --prompt "a cat's eye" --model path/to/model.safetensors
  {PROG} run --help      (every option of run, with the settings' ranges)"""


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _spec_flag(spec) -> str:
    """The flag shown for a setting: its label (the name the README and the UI use)."""
    return _flag(spec.snake_label)


def _finite(text: str) -> float:
    """argparse type: a finite number (NaN and infinity are refused with the option's name)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("soft inpainting settings")
    presets = ", ".join("-".join(name.lower().split()) for name in PRESETS)
    group.add_argument("--preset", default=None, metavar="NAME",
                       help=f"start from a preset of the six settings ({presets}); "
                            "the flags below override single settings")
    for spec in SETTINGS:
        flags = [_spec_flag(spec)]
        if spec.snake_label != spec.name:
            flags.append(_flag(spec.name))
        # Read as text and checked against the table in _settings_from, so an error names the flag
        # and the range; None means "not given" (the preset's or the default value).
        group.add_argument(*flags, dest=spec.name, default=None, metavar="X",
                           # argparse formats help with %: a literal one ("50%") must be doubled.
                           help=f"{spec.label}: {spec.help} ({spec.range_text}, default {spec.default:g})"
                           .replace("%", "%%"))


def _settings_from(args: argparse.Namespace) -> SoftInpaintingSettings:
    """The six settings: the preset's (or the defaults), then the flags given, checked by the table."""
    try:
        base = DEFAULT_SETTINGS if getattr(args, "preset", None) is None else lookup_preset(args.preset)
    except SettingsError as error:
        raise CliError(f"--preset: {error}") from None
    values = base.as_dict()
    for spec in SETTINGS:
        given = getattr(args, spec.name)
        if given is None:
            continue
        try:
            coerce_setting(spec, given)
        except SettingsError as error:
            raise CliError(f"{_spec_flag(spec)}: {error}") from None
        values[spec.name] = float(given)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = SoftInpaintingSettings(**values)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Soft inpainting: grey masks as opacity, seamless blends.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="{run,demo}", parser_class=_Parser)

    run = commands.add_parser("run", help="soft-inpaint IMAGE with a diffusers model (SD, SDXL, SD3, Flux)",
                              description="Soft inpainting with a diffusers model: SD 1.x/2.x, SDXL, "
                                          "SD3/3.5, Flux or Flux Fill. "
                                          "MASK: white = regenerate, black = keep, grey = opacity.")
    run.add_argument("image", type=Path, help="picture to inpaint")
    run.add_argument("mask", type=Path, help="grey mask of the same size (or an RGBA picture's alpha)")
    run.add_argument("--prompt", required=True)
    run.add_argument("--negative-prompt", default="")
    run.add_argument("--model", required=True,
                     help="diffusers folder, .safetensors file or hub id: SD 1.x/2.x, SDXL, SD3/3.5, "
                          "Flux or Flux Fill (the kind is read from the folder or the file)")
    run.add_argument("--pipeline", choices=("inpaint", "img2img"), default="inpaint",
                     help="which diffusers pipeline to load (default inpaint; Flux Fill models inpaint only)")
    run.add_argument("--sampler", choices=sorted(SAMPLERS), default=None,
                     help=f"default {DEFAULT_SAMPLER}; flow-matching models (SD3, Flux) sample with their "
                          f"own Euler (flow matching) scheduler, so they take only {FLOW_SAMPLER}")
    run.add_argument("--steps", type=int, default=20)
    run.add_argument("--seed", type=int, default=-1,
                     help=f"0 to {MAX_SEED}; -1 = random (the seed used is recorded)")
    run.add_argument("--strength", type=_finite, default=0.75,
                     help="denoising strength, above 0 up to 1 (steps x strength must reach 1)")
    run.add_argument("--cfg", type=_finite, default=None,
                     help=f"CFG scale, 0 or more (default {DEFAULT_CFG:g}; flow-matching models: their "
                          "pipeline's own guidance default, e.g. 30 for Flux Fill)")
    run.add_argument("--mask-blur", type=int, default=4, metavar="N",
                     help=f"blur the mask by N pixels first, as the WebUI's Mask blur does (0 to "
                          f"{MAX_MASK_BLUR}, default 4 as in the WebUI; {LOW_MASK_BLUR} to "
                          f"{MAX_MASK_BLUR} suit soft inpainting)")
    run.add_argument("--batch-size", type=int, default=1, metavar="N",
                     help="candidates made together in one batch (default 1)")
    run.add_argument("--n-iter", type=int, default=1, metavar="N",
                     help="batches made one after another (default 1); every candidate is written, "
                          "seeds seed, seed+1, ..., with a labelled contact sheet")
    run.add_argument("--width", type=int, default=None,
                     help="default: the image's, rounded down to 8 (Flux: 16)")
    run.add_argument("--height", type=int, default=None)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps ...")
    run.add_argument("--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto",
                     help="auto = float16 on CUDA (bfloat16 for Flux, whose activations overflow "
                          "float16), float32 elsewhere")
    run.add_argument("--out", type=Path, default=None,
                     help=f"output picture, {', '.join(PICTURE_FORMATS)} by its extension (default: "
                          "IMAGE-soft.png here); with several candidates OUT-1, OUT-2, ... and OUT-sheet")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_settings(run)

    demo = commands.add_parser("demo", help="run both stages on a bundled photo (no download)",
                               description="Hard vs soft inpainting of a bundled photo with a built-in, "
                                           "weight-free model; writes a comparison panel.")
    demo.add_argument("--out", type=Path, default=Path("soft_inpainting_demo"), help="output folder")
    demo.add_argument("--steps", type=int, default=20)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--strength", type=float, default=0.9, help="denoising strength, 0 to 1")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--guide", action="store_true",
                      help="instead, render a grid of what each setting does at three values "
                           "(OUT/soft_inpainting_guide.png, 12 steps; a minute or two)")
    _add_settings(demo)
    return parser


def _check_common(args: argparse.Namespace) -> None:
    if args.steps < 1:
        raise CliError(f"--steps must be at least 1, got {args.steps}")
    if not 0 < args.strength <= 1:
        raise CliError(f"--strength must be in (0, 1], got {args.strength:g}")


def _open_picture(path: Path, what: str) -> Image.Image:
    if not path.exists():
        raise CliError(f"{what} not found: {path}")
    if not path.is_file():
        raise CliError(f"{what} is not a file: {path}")
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise CliError(f"cannot read {what} {path}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class ProgressBar:
    """A small text progress bar on stderr (one line, redrawn in place)."""

    def __init__(self, width: int = 30, stream=None) -> None:
        self.width = width
        self.stream = stream or sys.stderr

    def __call__(self, label: str, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{label:>5} [{bar}] {done}/{total}{end}")
        self.stream.flush()


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _check_common(args)
    if args.guide:
        from .demo.guide import render_guide

        path = render_guide(args.out / "soft_inpainting_guide.png", seed=args.seed, strength=args.strength,
                            progress=None if args.quiet else ProgressBar())
        print(f"guide: {path}")
        return 0
    settings = _settings_from(args)
    _check_folder(args.out)
    result = run_demo(args.out, settings=settings, steps=args.steps, strength=args.strength, seed=args.seed,
                      progress=None if args.quiet else ProgressBar())
    print(f"panel: {result.panel_path}")
    print("seam energy on the mask's transition band (mean |grad(result - original)|^2, lower = smoother):")
    print(f"  hard-mask inpaint  {result.seam_hard:.5f}")
    print(f"  soft inpaint       {result.seam_soft:.5f}")
    print(f"  (the photo's own gradient energy there: {result.photo_energy:.5f})")
    print(f"done in {result.seconds:.1f} s")
    return 0


def _check_folder(out: Path) -> None:
    """The demo's ``--out`` is a folder: an existing file there (or above it) is a clear error."""
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                what = "--out" if place == out else f"--out {out}: {place}"
                raise CliError(f"{what} is a file, not a folder; the demo writes several pictures "
                               f"into a folder: name a new or existing folder")
            if not os.access(place, os.W_OK):
                raise CliError(f"--out {out}: cannot write in {place}")
            return


def _looks_like_path(model: str) -> bool:
    return (model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model
            or model.endswith((".safetensors", ".ckpt")))


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, shapes; no tensors read), or ``{}``."""
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return {}
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return {}
    return header if isinstance(header, dict) else {}


def checkpoint_kind(path: Path) -> str:
    """``"sd"``, ``"sdxl"``, ``"sd3"``, ``"flux"`` or ``"flux-fill"``: the model family of a single
    checkpoint file, from the tensors its safetensors header names (never from the file's name).

    SD3/3.5's MMDiT has ``joint_blocks``, Flux's transformer ``double_blocks``; Flux Fill's input
    layer ``img_in`` reads more than the 64 features of a packed latent (the mask and masked
    picture too). SDXL keeps its text encoders under ``conditioner.embedders``. Anything else
    (other formats included) counts as SD 1.x/2.x.
    """
    header = _safetensors_header(path)

    def tensor(suffix: str) -> dict[str, Any] | None:
        for prefix in ("", "model.diffusion_model."):
            entry = header.get(prefix + suffix)
            if isinstance(entry, dict):
                return entry
        return None

    def has_block(name: str) -> bool:
        return any(key.startswith((name, "model.diffusion_model." + name)) for key in header)

    if has_block("double_blocks."):
        img_in = tensor("img_in.weight")
        shape = img_in.get("shape", []) if img_in else []
        return "flux-fill" if len(shape) == 2 and int(shape[1]) > 64 else "flux"
    if has_block("joint_blocks."):
        return "sd3"
    if any(key.startswith("conditioner.embedders") for key in header):
        return "sdxl"
    return "sd"


def _is_sdxl_checkpoint(path: Path) -> bool:
    """Whether a single-file checkpoint holds an SDXL model, from its safetensors header alone."""
    return checkpoint_kind(path) == "sdxl"


# Pipeline classes per model family: (inpaint, img2img); None where the family cannot do it.
_SINGLE_FILE_PIPELINES: dict[str, tuple[str, str | None]] = {
    "sd": ("StableDiffusionInpaintPipeline", "StableDiffusionImg2ImgPipeline"),
    "sdxl": ("StableDiffusionXLInpaintPipeline", "StableDiffusionXLImg2ImgPipeline"),
    "sd3": ("StableDiffusion3InpaintPipeline", "StableDiffusion3Img2ImgPipeline"),
    "flux": ("FluxInpaintPipeline", "FluxImg2ImgPipeline"),
    "flux-fill": ("FluxFillPipeline", None),
}
# Folders whose model_index.json names a pipeline the Auto classes do not map (they pick the
# family's inpaint or img2img pipeline for the others).
_FOLDER_PIPELINES = {"FluxFillPipeline": "flux-fill"}


def _folder_class_name(path: Path) -> str | None:
    """``_class_name`` of a diffusers folder's ``model_index.json`` (None if unreadable: the loader
    then says what is wrong)."""
    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = index.get("_class_name") if isinstance(index, dict) else None
    return name if isinstance(name, str) else None


def _pipeline_class(kind: str, inpaint: bool, model: str) -> Any:
    import diffusers

    inpaint_name, img2img_name = _SINGLE_FILE_PIPELINES[kind]
    name = inpaint_name if inpaint else img2img_name
    if name is None:
        raise CliError(f"--model {model} is a {kind.replace('-', ' ').title()} model, which only inpaints: "
                       "use --pipeline inpaint")
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise CliError(f"--model {model} needs diffusers' {name}, which this diffusers "
                       f"({diffusers.__version__}) lacks: pip install -U diffusers")
    return cls


def _load_pipeline(args: argparse.Namespace, device: str, dtype: Any) -> Any:
    """The diffusers pipeline for ``--model``: a folder or hub id, or a single checkpoint file."""
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    model = args.model
    path = Path(model).expanduser()
    if not path.exists() and _looks_like_path(model):
        raise CliError(f"model not found: {model}")
    hub_kwargs = {} if path.exists() else _hub_access(model)
    # float32 is every loader's default; naming it only where needed avoids the keyword's deprecation
    # warnings in newer diffusers (which call it ``dtype``) while older ones know only ``torch_dtype``.
    dtype_kwargs = {} if dtype == torch.float32 else {"torch_dtype": dtype}
    inpaint = args.pipeline == "inpaint"
    folder_kind = _FOLDER_PIPELINES.get(_folder_class_name(path) or "") if path.is_dir() else None
    if path.is_file():
        cls = _pipeline_class(checkpoint_kind(path), inpaint, model)
    elif folder_kind is not None:
        cls = _pipeline_class(folder_kind, inpaint, model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if path.is_file():
                pipe = cls.from_single_file(str(path), **dtype_kwargs)
            elif folder_kind is not None:
                pipe = cls.from_pretrained(str(path), **dtype_kwargs)
            else:
                auto = AutoPipelineForInpainting if inpaint else AutoPipelineForImage2Image
                pipe = auto.from_pretrained(str(path) if path.exists() else model, **dtype_kwargs,
                                            **hub_kwargs)
            return pipe.to(device)
    except Exception as error:  # any loader failure is the user's to fix: say which model and why
        raise CliError(f"cannot load model {model}: {_one_line(error)}") from None


def _hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached, or None when it can (a quick check, no retries).

    ``HF_HUB_OFFLINE`` set counts as unreachable; otherwise one TCP connection to the hub's host
    (``HF_ENDPOINT``, or the HTTPS proxy when one is set) must open within a few seconds.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = urllib.parse.urlsplit(proxy or endpoint)
    host = target.hostname or "huggingface.co"
    port = target.port or (80 if target.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=HUB_TIMEOUT_S):
            return None
    except OSError as error:
        return f"no connection to {host}:{port} ({_one_line(error)})"


def _hub_access(model: str) -> dict[str, Any]:
    """Loader keywords for a hub id: none when the hub answers, ``local_files_only`` when it does not
    but the model is in the local cache; otherwise a CliError says what to do instead."""
    problem = _hub_unreachable()
    if problem is None:
        return {}
    # The cache named in the environment now (the libraries read it once, when imported).
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "model_index.json", cache_dir=cache_dir)
    except Exception:  # an id the hub library refuses: not in the cache either
        cached = None
    if isinstance(cached, str):
        return {"local_files_only": True, **({"cache_dir": cache_dir} if cache_dir else {})}
    raise CliError(f"--model {model}: the Hugging Face hub cannot be reached ({problem}) and the model is "
                   "not in the local cache; pass a local model instead: --model path/to/diffusers-folder "
                   "or --model path/to/model.safetensors")


def _choose_sampling(args: argparse.Namespace, pipe: Any) -> None:
    """``--sampler`` and the ``--cfg`` default, by the kind of model.

    Noise-level models (SD, SDXL) get the chosen sampler and CFG 7 by default; flow-matching models
    keep their own flow Euler scheduler and their pipeline's guidance default. Which kind the model
    is comes from its scheduler's forward process (the adapter reads it). ``args.sampler`` and
    ``args.cfg`` afterwards name what is used (for the infotext).
    """
    import diffusers

    from .integrations.diffusers_pipeline import UnsupportedSchedulerError, scheduler_mapping

    try:
        flow = scheduler_mapping(pipe.scheduler).is_flow
    except UnsupportedSchedulerError as error:
        raise CliError(f"--model {args.model}: {_one_line(error)}") from None
    if flow:
        if args.cfg is None:  # guidance-distilled and Fill models come with their own default
            default = inspect.signature(pipe.__call__).parameters.get("guidance_scale")
            usable = default is not None and isinstance(default.default, (int, float))
            args.cfg = float(default.default) if usable else DEFAULT_CFG
        if args.sampler not in (None, FLOW_SAMPLER):
            raise CliError(f"--sampler {args.sampler} is for noise-level models (SD 1.x/2.x, SDXL); "
                           f"{args.model} is a flow-matching model and samples with its own Euler (flow "
                           f"matching) scheduler: leave --sampler out or use --sampler {FLOW_SAMPLER}")
        args.sampler = FLOW_SAMPLER
        return
    args.sampler = args.sampler or DEFAULT_SAMPLER
    args.cfg = DEFAULT_CFG if args.cfg is None else args.cfg
    choice = args.sampler
    _, class_name, overrides = SAMPLERS[choice]
    scheduler_cls = getattr(diffusers, class_name)
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **overrides)


def _local_model_kind(model: str) -> str | None:
    """The family of a local ``--model`` ("flux", "sd3", …) from what the folder or file declares,
    or None (a hub id, an unreadable folder: the loader decides)."""
    path = Path(model).expanduser()
    if path.is_file():
        return checkpoint_kind(path)
    name = _folder_class_name(path) if path.is_dir() else None
    if name is None:
        return None
    if name.startswith("Flux"):
        return "flux"
    return "sd3" if name.startswith("StableDiffusion3") else "sd"


def _auto_dtype(device_type: str, kind: str | None, bf16_supported: bool) -> Any:
    """``--dtype auto``: float16 on CUDA, but bfloat16 for Flux (its activations overflow float16
    into black pictures) where the GPU has it; float32 elsewhere."""
    import torch

    if device_type != "cuda":
        return torch.float32
    if kind in ("flux", "flux-fill") and bf16_supported:
        return torch.bfloat16
    return torch.float16


def _device_and_dtype(args: argparse.Namespace) -> tuple[str, Any]:
    """``--device`` and ``--dtype`` checked against what this torch can use."""
    import torch

    device = args.device.strip().lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    allowed = "auto, cpu, cuda, cuda:N or mps"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise CliError(f"--device {args.device!r} is not a device; use {allowed}") from None
    if parsed.type not in DEVICE_TYPES:
        raise CliError(f"--device {args.device!r} is not a device to run a model on; use {allowed}")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CliError(f"--device {args.device}: this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                           "use --device cpu (or auto)")
        if parsed.index is not None and parsed.index >= count:
            raise CliError(f"--device {args.device}: there are {count} CUDA GPUs "
                           f"(cuda:0 to cuda:{count - 1})")
    if parsed.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CliError(f"--device {args.device}: this PyTorch sees no Apple GPU (MPS); use --device cpu")
    if parsed.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise CliError(f"--device {args.device}: this PyTorch sees no Intel GPU (XPU); use --device cpu")
    if args.dtype == "auto":
        dtype = _auto_dtype(parsed.type, _local_model_kind(args.model),
                            parsed.type == "cuda" and torch.cuda.is_bf16_supported())
    else:
        dtype = getattr(torch, args.dtype)
    return device, dtype


@contextlib.contextmanager
def _library_output(quiet: bool) -> Iterator[None]:
    """Keep diffusers' and transformers' advice (optional packages, deprecations) off the console,
    and with ``quiet`` their loading bars too; everything is restored afterwards.

    The environment variables cover what the libraries print while being imported, their logging
    switches what they print later. A verbosity the user has set in the environment wins.
    """
    restore: list[Callable[[], None]] = []
    for package in ("diffusers", "transformers"):
        variable = f"{package.upper()}_VERBOSITY"
        if variable not in os.environ:
            os.environ[variable] = "error"
            restore.append(functools.partial(os.environ.pop, variable, None))
        try:
            logging = importlib.import_module(f"{package}.utils.logging")
        except ImportError:
            continue
        if os.environ[variable] == "error":
            restore.append(functools.partial(logging.set_verbosity, logging.get_verbosity()))
            logging.set_verbosity_error()
        if quiet and logging.is_progress_bar_enabled():
            logging.disable_progress_bar()
            restore.append(logging.enable_progress_bar)
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _needs_diffusers() -> None:
    try:
        import transformers  # noqa: F401  (diffusers imports without it, then fails to load a model)

        from .integrations.diffusers_pipeline import soft_inpaint  # noqa: F401
    except ImportError as error:
        cause = error.__cause__ or error
        missing = getattr(cause, "name", None)
        detail = f"{missing} is not installed" if missing else _one_line(cause)
        raise CliError("the run command needs the diffusers extra: "
                       f"pip install \"soft-inpainting[diffusers]\" ({detail})") from None


def _sample(args: argparse.Namespace, pipe: Any, image: Image.Image, mask: Image.Image,
            settings: SoftInpaintingSettings, seeds: Sequence[int]) -> Any:
    """One batch: a candidate per seed, each from its own generator (so seed s alone remakes it)."""
    import torch

    from .integrations.diffusers_pipeline import soft_inpaint

    generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
    takes_negative = "negative_prompt" in inspect.signature(pipe.__call__).parameters  # not Flux Fill
    if args.negative_prompt and not takes_negative:
        raise CliError(f"--negative-prompt: {type(pipe).__name__} takes no negative prompt")
    extra = {"negative_prompt": args.negative_prompt or None} if takes_negative else {}
    try:
        return soft_inpaint(pipe, image, mask, args.prompt, settings=settings, width=args.width,
                            height=args.height, strength=args.strength, num_inference_steps=args.steps,
                            guidance_scale=args.cfg, generator=generators, num_images_per_prompt=len(seeds),
                            **extra)
    except ValueError as error:
        raise CliError(_one_line(error)) from None


def _check_run(args: argparse.Namespace) -> None:
    """Every option of ``run`` that can be checked before a file is read or a model loaded."""
    _check_common(args)
    if int(args.steps * args.strength) < 1:  # the pipelines' own count of the steps they run
        least = math.ceil(1000 / args.steps) / 1000
        raise CliError(f"--strength {args.strength:g} with --steps {args.steps} leaves no denoising step "
                       f"(steps x strength must reach 1): use --strength {least:g} or more, or more --steps")
    if args.cfg is not None and args.cfg < 0:
        raise CliError(f"--cfg must be 0 or more, got {args.cfg:g}")
    if not (args.seed == -1 or 0 <= args.seed <= MAX_SEED):
        raise CliError(f"--seed must be -1 (random) or 0 to {MAX_SEED}, got {args.seed}")
    for name in ("batch_size", "n_iter"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.mask_blur <= MAX_MASK_BLUR:
        raise CliError(f"--mask-blur must be 0 to {MAX_MASK_BLUR} (the WebUI's range), got {args.mask_blur}")
    for name in ("width", "height"):
        value = getattr(args, name)
        if value is not None and (value < 8 or value % 8):
            raise CliError(f"--{name} must be a positive multiple of 8, got {value}")


def _outputs(out: Path, count: int) -> tuple[list[Path], Path | None]:
    """Where the candidates go (``OUT`` alone, or ``OUT-1``, ``OUT-2``, …) and the contact sheet."""
    if count == 1:
        return [out], None
    digits = len(str(count))
    paths = [out.with_name(f"{out.stem}-{i:0{digits}d}{out.suffix}") for i in range(1, count + 1)]
    return paths, out.with_name(f"{out.stem}-sheet{out.suffix}")


def _warn_if_hard_edged(mask: Image.Image, blur: int) -> None:
    if blur < LOW_MASK_BLUR and is_hard_edged(mask):
        print(f"warning: the mask has no grey (only black and white) and --mask-blur is {blur}: soft "
              "inpainting blends across a mask's grey transition, so there is little to blend; use "
              f"--mask-blur {ADVISED_MASK_BLUR} ({LOW_MASK_BLUR} to {MAX_MASK_BLUR}) or a blurred mask",
              file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    _check_run(args)
    settings = _settings_from(args)
    out = args.out or Path(f"{args.image.stem}-soft.png")
    try:
        picture_format(out)
    except ValueError as error:
        raise CliError(f"--out: {error}") from None
    if not out.parent.is_dir():
        raise CliError(f"output folder not found: {out.parent}")
    device, dtype = _device_and_dtype(args)
    image = _open_picture(args.image, "image")
    mask = _open_picture(args.mask, "mask")
    if image.size != mask.size:
        raise CliError(f"the mask is {mask.width}x{mask.height} but the image is "
                       f"{image.width}x{image.height}")
    _warn_if_hard_edged(mask, args.mask_blur)
    mask = blur_mask(mask_from_picture(mask), args.mask_blur)
    first = args.seed if args.seed >= 0 else random.randrange(MAX_SEED + 1)
    count = args.batch_size * args.n_iter
    seeds = [(first + i) % (MAX_SEED + 1) for i in range(count)]
    paths, sheet_path = _outputs(out, count)
    pictures, infotexts = [], []
    with _library_output(args.quiet):
        _needs_diffusers()
        pipe = _load_pipeline(args, device, dtype)
        _choose_sampling(args, pipe)
        pipe.set_progress_bar_config(disable=args.quiet)
        for batch in range(args.n_iter):
            batch_seeds = seeds[batch * args.batch_size:(batch + 1) * args.batch_size]
            result = _sample(args, pipe, image, mask, settings, batch_seeds)
            for picture, seed in zip(result.images, batch_seeds, strict=True):
                infotext = _infotext(args, settings, picture, seed, len(pictures))
                path = paths[len(pictures)]
                save_with_infotext(picture, path, infotext)
                print(f"wrote {path}" + (f" (seed {seed})" if count > 1 else ""))
                pictures.append(picture)
                infotexts.append(infotext)
    if sheet_path is not None:
        labels = [f"{i + 1}: seed {seed}" for i, seed in enumerate(seeds)]
        # As the WebUI's grids do, the sheet carries the first candidate's parameters.
        save_with_infotext(contact_sheet(pictures, labels), sheet_path, infotexts[0])
        print(f"wrote {sheet_path} (contact sheet of {count})")
    return 0


def _infotext(args: argparse.Namespace, settings: SoftInpaintingSettings, picture: Image.Image, seed: int,
              index: int) -> str:
    """One candidate's generation parameters, under the WebUI's keys (its batch keys included)."""
    batched = args.batch_size > 1
    params: dict[str, Any] = {
        "Steps": args.steps,
        "Sampler": SAMPLERS[args.sampler][0],
        "Schedule type": SCHEDULE_TYPE.get(args.sampler),
        "CFG scale": _number(args.cfg),
        "Seed": seed,
        "Size": f"{picture.width}x{picture.height}",
        "Model": Path(args.model).stem if Path(args.model).exists() else args.model,
        "Denoising strength": _number(args.strength),
        "Mask blur": args.mask_blur or None,
        "Batch size": args.batch_size if batched else None,
        "Batch pos": index % args.batch_size if batched else None,
        **settings.infotext(),
    }
    return format_infotext(args.prompt, args.negative_prompt, params)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return _demo(args) if args.command == "demo" else _run(args)
    except CliError as error:
        print(f"{PROG.split()[-1]}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
