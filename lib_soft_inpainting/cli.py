"""Command line: ``python -m lib_soft_inpainting run|demo``.

- ``run IMAGE MASK --prompt … --model PATH_OR_ID``: soft inpainting with a diffusers Stable
  Diffusion (or XL) model; writes a PNG whose ``parameters`` text chunk holds the generation
  parameters in the WebUI's infotext format. Needs the ``diffusers`` extra.
- ``demo --out DIR``: both stages on a bundled photo with a built-in weight-free model; no
  download, core dependencies only.

The six settings are flags named after them (``--mask-blend-power``, or by their label,
``--schedule-bias``); defaults, ranges and help come from the settings table. Problems the user
can fix (missing or unreadable files, mismatched sizes, a model that cannot be loaded, invalid
values) end with exit code 2 and one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .integrations.infotext import format_infotext, save_png_with_infotext
from .settings import SETTINGS, SettingsError, SoftInpaintingSettings

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


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("soft inpainting settings")
    for spec in SETTINGS:
        flags = [_flag(spec.name)]
        if spec.snake_label != spec.name:
            flags.append(_flag(spec.snake_label))
        group.add_argument(*flags, dest=spec.name, type=float, default=spec.default, metavar="X",
                           # argparse formats help with %: a literal one ("50%") must be doubled.
                           help=f"{spec.label}: {spec.help} ({spec.range_text}, default {spec.default:g})"
                           .replace("%", "%%"))


def _settings_from(args: argparse.Namespace) -> SoftInpaintingSettings:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            settings = SoftInpaintingSettings(**{spec.name: getattr(args, spec.name) for spec in SETTINGS})
        except SettingsError as error:
            raise CliError(str(error)) from None
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Soft inpainting: grey masks as opacity, seamless blends.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="soft-inpaint IMAGE with a diffusers Stable Diffusion model",
                              description="Soft inpainting with a diffusers Stable Diffusion (or XL) model. "
                                          "MASK: white = regenerate, black = keep, grey = opacity.")
    run.add_argument("image", type=Path, help="picture to inpaint")
    run.add_argument("mask", type=Path, help="grey mask of the same size (or an RGBA picture's alpha)")
    run.add_argument("--prompt", required=True)
    run.add_argument("--negative-prompt", default="")
    run.add_argument("--model", required=True, help="diffusers folder, .safetensors file or hub id")
    run.add_argument("--pipeline", choices=("inpaint", "img2img"), default="inpaint",
                     help="which diffusers pipeline to load (default inpaint)")
    run.add_argument("--sampler", choices=sorted(SAMPLERS), default="dpmpp_2m")
    run.add_argument("--steps", type=int, default=20)
    run.add_argument("--seed", type=int, default=-1, help="-1 = random (the seed used is recorded)")
    run.add_argument("--strength", type=float, default=0.75, help="denoising strength, 0 to 1")
    run.add_argument("--cfg", type=float, default=7.0, help="CFG scale")
    run.add_argument("--width", type=int, default=None, help="default: the image's, rounded down to 8")
    run.add_argument("--height", type=int, default=None)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps ...")
    run.add_argument("--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto",
                     help="auto = float16 on CUDA, float32 elsewhere")
    run.add_argument("--out", type=Path, default=None, help="output PNG (default: IMAGE-soft.png here)")
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
        from .demo_guide import render_guide

        path = render_guide(args.out / "soft_inpainting_guide.png", seed=args.seed, strength=args.strength,
                            progress=None if args.quiet else ProgressBar())
        print(f"guide: {path}")
        return 0
    settings = _settings_from(args)
    result = run_demo(args.out, settings=settings, steps=args.steps, strength=args.strength, seed=args.seed,
                      progress=None if args.quiet else ProgressBar())
    print(f"panel: {result.panel_path}")
    print("seam energy on the mask's transition band (mean |grad(result - original)|^2, lower = smoother):")
    print(f"  hard-mask inpaint  {result.seam_hard:.5f}")
    print(f"  soft inpaint       {result.seam_soft:.5f}")
    print(f"  (the photo's own gradient energy there: {result.photo_energy:.5f})")
    print(f"done in {result.seconds:.1f} s")
    return 0


def _looks_like_path(model: str) -> bool:
    return (model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model
            or model.endswith((".safetensors", ".ckpt")))


def _is_sdxl_checkpoint(path: Path) -> bool:
    """Whether a single-file checkpoint holds an SDXL model, from its safetensors header alone.

    SDXL checkpoints keep their text encoders under ``conditioner.embedders``; SD 1.x/2.x under
    ``cond_stage_model``. Only the JSON header is read (no tensors); other formats count as SD.
    """
    if path.suffix.lower() != ".safetensors":
        return False
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return False
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return False
    return any(key.startswith("conditioner.embedders") for key in header)


def _load_pipeline(args: argparse.Namespace, device: str, dtype: Any) -> Any:
    """The diffusers pipeline for ``--model``: a folder or hub id, or a single checkpoint file."""
    import torch
    from diffusers import (
        AutoPipelineForImage2Image,
        AutoPipelineForInpainting,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
    )

    model = args.model
    path = Path(model).expanduser()
    if not path.exists() and _looks_like_path(model):
        raise CliError(f"model not found: {model}")
    # float32 is every loader's default; naming it only where needed avoids the keyword's deprecation
    # warnings in newer diffusers (which call it ``dtype``) while older ones know only ``torch_dtype``.
    dtype_kwargs = {} if dtype == torch.float32 else {"torch_dtype": dtype}
    inpaint = args.pipeline == "inpaint"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if path.is_file():
                if _is_sdxl_checkpoint(path):
                    cls = StableDiffusionXLInpaintPipeline if inpaint else StableDiffusionXLImg2ImgPipeline
                else:
                    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionImg2ImgPipeline
                pipe = cls.from_single_file(str(path), **dtype_kwargs)
            else:
                auto = AutoPipelineForInpainting if inpaint else AutoPipelineForImage2Image
                pipe = auto.from_pretrained(str(path) if path.exists() else model, **dtype_kwargs)
            return pipe.to(device)
    except Exception as error:  # any loader failure is the user's to fix: say which model and why
        raise CliError(f"cannot load model {model}: {_one_line(error)}") from None


def _set_sampler(pipe: Any, choice: str) -> None:
    import diffusers

    _, class_name, overrides = SAMPLERS[choice]
    scheduler_cls = getattr(diffusers, class_name)
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **overrides)


def _device_and_dtype(args: argparse.Namespace) -> tuple[str, Any]:
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dtype == "auto":
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
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


def _sample(args: argparse.Namespace, image: Image.Image, mask: Image.Image,
            settings: SoftInpaintingSettings) -> tuple[Any, int]:
    """Load the model and soft-inpaint: (the adapter's output, the seed used)."""
    try:
        import torch
        import transformers  # noqa: F401  (diffusers imports without it, then fails to load a model)

        from .integrations.diffusers_pipeline import soft_inpaint
    except ImportError as error:
        cause = error.__cause__ or error
        missing = getattr(cause, "name", None)
        detail = f"{missing} is not installed" if missing else _one_line(cause)
        raise CliError("the run command needs the diffusers extra: "
                       f"pip install \"soft-inpainting[diffusers]\" ({detail})") from None

    device, dtype = _device_and_dtype(args)
    pipe = _load_pipeline(args, device, dtype)
    _set_sampler(pipe, args.sampler)
    pipe.set_progress_bar_config(disable=args.quiet)
    seed = args.seed if args.seed >= 0 else random.randrange(2 ** 32)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    try:
        result = soft_inpaint(pipe, image, mask, args.prompt, settings=settings, width=args.width,
                              height=args.height, strength=args.strength,
                              negative_prompt=args.negative_prompt or None, num_inference_steps=args.steps,
                              guidance_scale=args.cfg, generator=generator)
    except ValueError as error:
        raise CliError(_one_line(error)) from None
    return result, seed


def _run(args: argparse.Namespace) -> int:
    _check_common(args)
    if args.cfg < 0:
        raise CliError(f"--cfg must be >= 0, got {args.cfg:g}")
    for name in ("width", "height"):
        value = getattr(args, name)
        if value is not None and (value < 8 or value % 8):
            raise CliError(f"--{name} must be a positive multiple of 8, got {value}")
    settings = _settings_from(args)
    image = _open_picture(args.image, "image")
    mask = _open_picture(args.mask, "mask")
    if image.size != mask.size:
        raise CliError(f"the mask is {mask.width}x{mask.height} but the image is "
                       f"{image.width}x{image.height}")
    out = args.out or Path(f"{args.image.stem}-soft.png")
    if not out.parent.is_dir():
        raise CliError(f"output folder not found: {out.parent}")
    with _library_output(args.quiet):
        result, seed = _sample(args, image, mask, settings)
    picture = result.images[0]
    params: dict[str, Any] = {
        "Steps": args.steps,
        "Sampler": SAMPLERS[args.sampler][0],
        "Schedule type": SCHEDULE_TYPE.get(args.sampler),
        "CFG scale": _number(args.cfg),
        "Seed": seed,
        "Size": f"{picture.width}x{picture.height}",
        "Model": Path(args.model).stem if Path(args.model).exists() else args.model,
        "Denoising strength": _number(args.strength),
        **settings.infotext(),
    }
    save_png_with_infotext(picture, out, format_infotext(args.prompt, args.negative_prompt, params))
    print(f"wrote {out}")
    return 0


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _demo(args) if args.command == "demo" else _run(args)
    except CliError as error:
        print(f"{PROG.split()[-1]}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
