"""The "Soft inpainting" section of the WebUI's Settings page and the command-line options.

User defaults for the six sliders (and whether the accordion starts enabled) are read when the
accordion is built; the host fills short API argument lists from the controls' values, so the same
defaults apply there.
"""

from __future__ import annotations

from typing import Any

from lib_soft_inpainting.settings import DEFAULT_SETTINGS, SETTINGS, SoftInpaintingSettings

SECTION = ("soft_inpainting", "Soft inpainting")
ENABLED_BY_DEFAULT = "soft_inpainting_enabled_by_default"
TIMESTEP_AS_NOISE_LEVEL = "soft_inpainting_timestep_as_noise_level"
DEFAULT_PREFIX = "soft_inpainting_default_"
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def default_key(name: str) -> str:
    return DEFAULT_PREFIX + name


def register(shared: Any, gr: Any) -> None:
    """Add the options to the host's Settings page (an ``on_ui_settings`` callback)."""
    section = SECTION
    shared.opts.add_option(ENABLED_BY_DEFAULT, shared.OptionInfo(
        False, "Soft inpainting starts enabled", gr.Checkbox, section=section))
    shared.opts.add_option(TIMESTEP_AS_NOISE_LEVEL, shared.OptionInfo(
        True, "Noise level conversion on by default: flow models (SD3, Flux, ...) and DDIM/PLMS/UniPC "
              "get the noise level the schedule is made for",
        gr.Checkbox, section=section).info(
            "Flow models pass a sigma from 1 to 0 (used as sigma / (1 - sigma)), DDIM/PLMS/UniPC a "
            "timestep (0-999); without conversion grey regions lose the original from the first step "
            "(flow) or the soft mask turns practically binary (timesteps), and on 16-channel latents "
            "the difference threshold means half the per-channel change. Off reproduces the WebUI's "
            "built-in. Older images without the conversion's infotext keys paste back with it off, so "
            "they reproduce."))
    for spec in SETTINGS:
        shared.opts.add_option(default_key(spec.name), shared.OptionInfo(
            spec.default, f"Default {spec.label.lower()}", gr.Slider,
            {"minimum": spec.minimum, "maximum": spec.maximum, "step": spec.step}, section=section))


def _opt(opts: Any, key: str, fallback: Any) -> Any:
    try:
        value = getattr(opts, key)
    except AttributeError:
        return fallback
    return fallback if value is None else value


def user_defaults(opts: Any) -> SoftInpaintingSettings:
    """The six defaults from the Settings page; an unusable stored value falls back to the table."""
    values = {}
    for spec in SETTINGS:
        value = _opt(opts, default_key(spec.name), spec.default)
        try:
            values[spec.name] = SoftInpaintingSettings(**{spec.name: value}).as_dict()[spec.name]
        except ValueError:
            values[spec.name] = getattr(DEFAULT_SETTINGS, spec.name)
    return SoftInpaintingSettings(**values)


def enabled_by_default(opts: Any) -> bool:
    return bool(_opt(opts, ENABLED_BY_DEFAULT, False))


def timestep_as_noise_level(opts: Any) -> bool:
    return bool(_opt(opts, TIMESTEP_AS_NOISE_LEVEL, True))


def post_sample_device(cmd_opts: Any) -> str:
    """``--soft-inpainting-device``: where the post-sample stage runs (auto = the latents' device)."""
    choice = str(getattr(cmd_opts, "soft_inpainting_device", "auto") or "auto").lower()
    return choice if choice in DEVICE_CHOICES else "auto"
