"""The six soft-inpainting settings, described once (SPEC §2).

Everything that shows, parses, validates or records a setting reads the table
``SETTINGS``: the sliders, the infotext keys and paste-back, the API argument
parsing (positional and named) and the schema route. Validation happens in one
place, :func:`coerce_setting`, which :class:`SoftInpaintingSettings` calls.

Policy for values (the README repeats it):

* NaN, ±inf, and anything that is not a number are rejected with
  :class:`SettingsError`, naming the setting, the value and the allowed range.
* Finite numbers outside the UI range are clamped to it; the adjustment is
  kept on the settings object (``adjustments``) so the glue can warn in the
  console and note it in the infotext. The infotext then records the value that
  was used, so pasting it back reproduces the picture.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENABLED_LABEL = "Soft inpainting"
ENABLED_INFOTEXT_KEY = "Soft inpainting enabled"
NOTE_INFOTEXT_KEY = "Soft inpainting note"
TIMESTEP_INFOTEXT_KEY = "Soft inpainting timestep noise level"
FLOW_INFOTEXT_KEY = "Soft inpainting flow noise level"
CHANNELS_INFOTEXT_KEY = "Soft inpainting difference per channel"
NOISE_LEVEL_INFOTEXT_KEYS = (TIMESTEP_INFOTEXT_KEY, FLOW_INFOTEXT_KEY, CHANNELS_INFOTEXT_KEY)
"""What the eighth argument changed in a job, each written (``True``) only when it changed the
result: a timestep sampler's timestep converted (DDIM/PLMS/UniPC on A1111), a flow model's σ mapped
to ``σ / (1 − σ)``, the latent distance of non-4-channel latents taken per channel."""
TIMESTEP_FLAG = "timestep_as_noise_level"
TIMESTEP_LABEL = "Noise level conversion (flow models such as SD3 and Flux; DDIM/PLMS/UniPC)"
TIMESTEP_HELP = ("On: the schedule gets the noise level it is made for — a flow model's sigma (0-1) as "
                 "sigma / (1 - sigma), a DDIM/PLMS/UniPC timestep as its noise level — and the "
                 "difference threshold means the same per-channel change for 16-channel latents as for "
                 "4. Off: the sampler's value as is and the plain latent distance, as the WebUI's "
                 "built-in does. SD1/SD2/SDXL with other samplers: no difference.")
ELEM_ID_PREFIX = "soft_inpaint_"


_NOT_GIVEN = object()


class SettingsError(ValueError):
    """A setting that cannot be used: names the setting, the value and the range.

    The same facts are kept as attributes for callers that answer with structured data (the
    WebUI's request check): ``setting`` (python name), ``value`` (as given), ``allowed`` (text),
    ``position`` (index in the script's argument list, 0 = enabled) and ``key`` (the name used in
    a dict of named settings). Any of them may be None when unknown.
    """

    def __init__(self, message: str, *, setting: str | None = None, value: Any = _NOT_GIVEN,
                 allowed: str | None = None, position: int | None = None, key: str | None = None
                 ) -> None:
        super().__init__(message)
        self.setting, self.allowed, self.position, self.key = setting, allowed, position, key
        self.has_value = value is not _NOT_GIVEN
        self.value = value if self.has_value else None

    def at(self, position: int, key: str | None = None) -> SettingsError:
        """This error, placed at ``position`` of the argument list (kept if already placed)."""
        if self.position is None:
            self.position = position
        if self.key is None:
            self.key = key
        return self


@dataclass(frozen=True)
class SettingSpec:
    """One row of the settings table."""

    name: str
    label: str
    infotext_key: str
    minimum: float
    maximum: float
    step: float
    default: float
    help: str
    section: str

    @property
    def snake_label(self) -> str:
        """The UI label in snake_case, accepted as a name in API dicts."""
        return self.label.lower().replace(" ", "_")

    @property
    def elem_id(self) -> str:
        return ELEM_ID_PREFIX + self.name

    @property
    def range_text(self) -> str:
        return f"{_fmt(self.minimum)} to {_fmt(self.maximum)}"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "mask_blend_power", "Schedule bias", "Soft inpainting schedule bias",
        0.0, 8.0, 0.1, 1.0,
        "Shifts when the original is preserved during denoising: below 1 more near the end, "
        "above 1 more at the start.",
        "denoising"),
    SettingSpec(
        "mask_blend_scale", "Preservation strength", "Soft inpainting preservation strength",
        0.0, 8.0, 0.05, 0.5,
        "How strongly partially masked (grey) content keeps the original. Low favours new content.",
        "denoising"),
    SettingSpec(
        "inpaint_detail_preservation", "Transition contrast boost",
        "Soft inpainting transition contrast boost",
        1.0, 32.0, 0.5, 4.0,
        "Restores the contrast a plain blend loses in grey regions. High values may over-saturate.",
        "denoising"),
    SettingSpec(
        "composite_mask_influence", "Mask influence", "Soft inpainting mask influence",
        0.0, 1.0, 0.05, 0.0,
        "How much the painted mask, rather than what actually changed, decides the final composite.",
        "composite"),
    SettingSpec(
        "composite_difference_threshold", "Difference threshold", "Soft inpainting difference threshold",
        0.0, 8.0, 0.25, 0.5,
        "How much a region may change and still show the original pixels (50% opacity at this value). "
        "The change is measured per latent channel, so it means the same for 16-channel models.",
        "composite"),
    SettingSpec(
        "composite_difference_contrast", "Difference contrast", "Soft inpainting difference contrast",
        0.0, 8.0, 0.25, 2.0,
        "How sharp the step is between kept and regenerated regions. Low values may ghost.",
        "composite"),
)

SETTING_NAMES: tuple[str, ...] = tuple(spec.name for spec in SETTINGS)
SPECS_BY_NAME: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}


def _fmt(x: float) -> str:
    return f"{x:g}"


def _spec_aliases() -> dict[str, SettingSpec]:
    """Every name a caller may use for a setting, lower-cased: field, snake label, label, key."""
    aliases: dict[str, SettingSpec] = {}
    for spec in SETTINGS:
        for alias in (spec.name, spec.snake_label, spec.label, spec.infotext_key, spec.elem_id):
            aliases[alias.lower()] = spec
    return aliases


_ALIASES = _spec_aliases()


def lookup_spec(name: str) -> SettingSpec:
    """The table row for any accepted spelling of a setting's name."""
    spec = _ALIASES.get(str(name).strip().lower())
    if spec is None:
        accepted = ", ".join(s.name for s in SETTINGS) + "; or their labels in snake_case"
        raise SettingsError(f"unknown soft inpainting setting {_shown(name)}; accepted names: {accepted}",
                            setting=str(name), allowed=accepted)
    return spec


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message, shortened; never raises (an int past Python's digit
    limit, or an object with a broken ``__repr__``, must not turn a SettingsError into a crash)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _as_number(spec: SettingSpec, value: Any) -> float:
    """A finite float from a number or a numeric string, or a SettingsError."""
    problem = None
    if isinstance(value, bool) or value is None:
        problem = "not a number"
    elif isinstance(value, numbers.Real):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range, e.g. 10**400 from JSON
            problem = "not finite"
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            problem = "not a number"
    elif hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _as_number(spec, value.item())
    else:
        problem = "not a number"
    if problem is None and not math.isfinite(number):
        problem = "not finite"
    if problem is not None:
        raise SettingsError(
            f"{spec.label} ({spec.name}) must be a finite number from {spec.range_text}; "
            f"got {_shown(value)} ({problem})",
            setting=spec.name, value=value, allowed=f"a finite number from {spec.range_text}")
    return number


def coerce_setting(spec: SettingSpec, value: Any) -> tuple[float, str | None]:
    """Validate one value: returns (value to use, adjustment note or None).

    The single validation point of the project (see the module docstring for the policy).
    """
    number = _as_number(spec, value)
    clamped = min(max(number, spec.minimum), spec.maximum)
    if clamped != number:
        return clamped, f"{spec.label} {_fmt(number)} clamped to {_fmt(clamped)} (range {spec.range_text})"
    return number, None


def parse_bool(value: Any, what: str = ENABLED_LABEL, name: str = "enabled") -> bool:
    """A strict boolean: bools, 0/1, and 'true'/'false'/'yes'/'no'/'on'/'off'/'1'/'0' strings."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy and torch scalars, e.g. numpy.bool_
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, numbers.Real) and value in (0, 1):  # no float(): 10**400 must not overflow
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "on", "1", "1.0"):
            return True
        if text in ("false", "no", "off", "0", "0.0", ""):
            return False
    raise SettingsError(f"{what} must be true or false; got {_shown(value)}", setting=name, value=value,
                        allowed="true or false")


@dataclass(frozen=True)
class SoftInpaintingSettings:
    """The six settings of one job, validated (SPEC §2).

    Positional order matches the upstream class, so ``SoftInpaintingSettings(1, 0.5, 4, 0, 0.5, 2)``
    works as it does there. Out-of-range values are clamped with a warning; the notes stay in
    ``adjustments`` (not part of equality).
    """

    mask_blend_power: float = SPECS_BY_NAME["mask_blend_power"].default
    mask_blend_scale: float = SPECS_BY_NAME["mask_blend_scale"].default
    inpaint_detail_preservation: float = SPECS_BY_NAME["inpaint_detail_preservation"].default
    composite_mask_influence: float = SPECS_BY_NAME["composite_mask_influence"].default
    composite_difference_threshold: float = SPECS_BY_NAME["composite_difference_threshold"].default
    composite_difference_contrast: float = SPECS_BY_NAME["composite_difference_contrast"].default
    adjustments: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        notes = list(self.adjustments)
        for spec in SETTINGS:
            value, note = coerce_setting(spec, getattr(self, spec.name))
            object.__setattr__(self, spec.name, value)
            if note is not None:
                notes.append(note)
        if len(notes) > len(self.adjustments):
            warnings.warn("soft inpainting: " + "; ".join(notes[len(self.adjustments):]), stacklevel=3)
        object.__setattr__(self, "adjustments", tuple(notes))

    def values(self) -> tuple[float, ...]:
        """The six values in the table's (and the API's) order."""
        return tuple(getattr(self, name) for name in SETTING_NAMES)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(SETTING_NAMES, self.values(), strict=True))

    def infotext(self) -> dict[str, Any]:
        """The seven infotext entries (SPEC §2), plus a note when a value was clamped."""
        entries: dict[str, Any] = {ENABLED_INFOTEXT_KEY: True}
        for spec in SETTINGS:
            entries[spec.infotext_key] = _infotext_number(getattr(self, spec.name))
        if self.adjustments:
            entries[NOTE_INFOTEXT_KEY] = "; ".join(self.adjustments)
        return entries

    def add_generation_params(self, dest: dict[str, Any]) -> None:
        """Upstream's name for writing the infotext entries into ``p.extra_generation_params``."""
        dest.update(self.infotext())


def _infotext_number(value: float) -> float | int:
    """Whole numbers as ints, like the UI's sliders hand them to upstream (``4`` not ``4.0``)."""
    return int(value) if float(value).is_integer() else value


DEFAULT_SETTINGS = SoftInpaintingSettings()

# The accordion's preset box and the command line's ``--preset`` read this one table.
PRESETS: dict[str, SoftInpaintingSettings] = {
    "Default": DEFAULT_SETTINGS,
    # The values a widely read guide found to blend most seamlessly.
    "Seamless blend": SoftInpaintingSettings(
        mask_blend_power=0.2, mask_blend_scale=0.05, inpaint_detail_preservation=1,
        composite_mask_influence=0, composite_difference_threshold=1.25, composite_difference_contrast=1.25),
}


def lookup_preset(name: str) -> SoftInpaintingSettings:
    """A preset by its name, case-insensitively, with ``-`` or ``_`` for spaces (``seamless-blend``)."""
    wanted = _preset_key(name)
    for preset_name, preset in PRESETS.items():
        if _preset_key(preset_name) == wanted:
            return preset
    choices = ", ".join(_preset_key(n) for n in PRESETS)
    raise SettingsError(f"unknown soft inpainting preset {_shown(name)}; choose one of: {choices}")


def _preset_key(name: str) -> str:
    return "-".join(str(name).strip().lower().replace("_", " ").split())


@dataclass(frozen=True)
class ParsedArgs:
    """What the script arguments of one job mean.

    ``timestep_as_noise_level`` is the optional eighth argument (None when not given): whether the
    sampler's sigma or timestep is converted to the noise level the schedule is made for (a flow
    model's σ to ``σ / (1 − σ)``, a timestep sampler's timestep to its noise level) and the latent
    distance of non-4-channel latents taken per channel. The name is kept for old clients.
    ``ignored`` counts the trailing values after the eight the script defines (they are ignored,
    as the WebUI's built-in ignores them; the glue says so in the console).
    """

    enabled: bool
    settings: SoftInpaintingSettings
    timestep_as_noise_level: bool | None = None
    ignored: int = 0


ARGS_COUNT = len(SETTINGS) + 2
"""How many positional script arguments the extension defines: enabled, the six, the flag."""


def parse_script_args(args: Iterable[Any] | None, defaults: SoftInpaintingSettings | None = None
                      ) -> ParsedArgs:
    """Parse the script's argument vector as the UI and the API hand it over.

    Accepted forms: ``[enabled, six numbers..., flag]`` (short lists take the rest from
    ``defaults``, ``None`` in a position means its default, values after the eighth are ignored
    and counted in ``ignored``), and ``[enabled, {name: value, ...}]`` with names as python fields
    or snake_case UI labels. Strings holding numbers or booleans are accepted; ``None`` for the
    whole vector means "not given" (disabled). Anything else raises :class:`SettingsError` naming
    the setting, the value, the allowed range and the position in the list, never another
    exception.
    """
    defaults = defaults or DEFAULT_SETTINGS
    if args is None:
        args = []
    elif isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Iterable):
        raise SettingsError(f"soft inpainting: the script arguments must be a list such as "
                            f"[true, 1, 0.5, 4, 0, 0.5, 2] or [true, {{\"difference_threshold\": 1.25}}]; "
                            f"got {_shown(args)}", setting="args", value=args, allowed="a list")
    args = list(args)
    try:
        enabled = parse_bool(args[0]) if args else False
    except SettingsError as error:
        raise error.at(0) from None
    rest = args[1:]
    values = dict(defaults.as_dict())
    ignored = 0
    flag_position, flag_key = len(SETTINGS) + 1, None
    if rest and isinstance(rest[0], Mapping):
        # Named form; what follows the dict is ignored (the API fills those positions with the
        # UI's defaults). A dict anywhere else is a bad value for that position's setting.
        named_values = dict(rest[0])
        flag_keys = [k for k in named_values if str(k).strip().lower() == TIMESTEP_FLAG]
        flag = named_values.pop(flag_keys[0]) if flag_keys else None
        flag_position, flag_key = 1, (flag_keys[0] if flag_keys else None)
        for key, value in named_values.items():
            try:
                name = next(iter(parse_named({key: value}, defaults=None)), None)
                if name is not None:
                    coerce_setting(SPECS_BY_NAME[name], value)
                    values[name] = value
            except SettingsError as error:
                raise error.at(1, str(key)) from None
    else:
        for position, (spec, value) in enumerate(zip(SETTINGS, rest, strict=False), start=1):
            if value is not None:  # short lists keep defaults
                try:
                    coerce_setting(spec, value)
                except SettingsError as error:
                    raise error.at(position) from None
                values[spec.name] = value
        flag = rest[len(SETTINGS)] if len(rest) > len(SETTINGS) else None
        ignored = max(0, len(args) - ARGS_COUNT)
    timestep_flag = None
    if flag is not None:
        try:
            timestep_flag = parse_bool(flag, f"\"{TIMESTEP_LABEL}\" ({TIMESTEP_FLAG})", TIMESTEP_FLAG)
        except SettingsError as error:
            raise error.at(flag_position, flag_key) from None
    return ParsedArgs(enabled=enabled, settings=SoftInpaintingSettings(**values),
                      timestep_as_noise_level=timestep_flag, ignored=ignored)


def parse_named(named: Mapping[str, Any], defaults: SoftInpaintingSettings | None = DEFAULT_SETTINGS
                ) -> dict[str, Any]:
    """Map a dict keyed by any accepted spelling to python field names (values unchecked here)."""
    values: dict[str, Any] = dict(defaults.as_dict()) if defaults is not None else {}
    for key, value in named.items():
        if str(key).strip().lower() in ("enabled", ENABLED_INFOTEXT_KEY.lower(), "soft_inpainting"):
            continue
        spec = lookup_spec(key)
        if value is not None:
            values[spec.name] = value
    return values


def settings_from_infotext(params: Mapping[str, Any], defaults: SoftInpaintingSettings | None = None
                           ) -> tuple[bool, SoftInpaintingSettings]:
    """Read the seven infotext keys leniently: invalid or missing values fall back to defaults.

    Never raises: this runs inside the paste handler, where an exception would break paste-back.
    """
    defaults = defaults or DEFAULT_SETTINGS
    try:
        enabled = parse_bool(params.get(ENABLED_INFOTEXT_KEY, False))
    except SettingsError:
        enabled = False
    values: dict[str, float] = {}
    for spec in SETTINGS:
        raw = params.get(spec.infotext_key)
        try:
            values[spec.name], _ = coerce_setting(spec, raw)
        except SettingsError:
            values[spec.name] = getattr(defaults, spec.name)
    return enabled, SoftInpaintingSettings(**values)


def noise_level_flag_from_infotext(params: Mapping[str, Any]) -> bool:
    """The eighth control as an infotext implies: on when any of the keys it writes says ``True``.

    It writes a key only when the conversion changed the result, so a picture without any of them
    (one made with it off, or before it existed) pastes back with it off and is reproduced.
    """
    return any(str(params.get(key, "")).strip().lower() == "true" for key in NOISE_LEVEL_INFOTEXT_KEYS)


def schema() -> dict[str, Any]:
    """A JSON-ready description of the settings for API users (names, types, ranges, order)."""
    return {
        "title": "Soft Inpainting",
        "args_order": ["enabled", *SETTING_NAMES, TIMESTEP_FLAG],
        "example_full": [True, *DEFAULT_SETTINGS.values()],
        "example_short": [True],
        "example_named": [True, {"difference_threshold": 1.25, "schedule_bias": 0.2}],
        "out_of_range_policy": "clamped to the range, with a console warning and a note in the infotext",
        "invalid_policy": "NaN, infinity and non-numbers are rejected before the job starts "
                          "(through the API: HTTP 422 naming the setting, value, range and position)",
        "settings": [
            {"name": "enabled", "type": "boolean", "default": False, "label": ENABLED_LABEL,
             "infotext_key": ENABLED_INFOTEXT_KEY, "position": 0},
            *({"name": spec.name, "type": "number", "label": spec.label, "aliases": [spec.snake_label],
               "infotext_key": spec.infotext_key, "minimum": spec.minimum, "maximum": spec.maximum,
               "step": spec.step, "default": spec.default, "help": spec.help, "position": i + 1}
              for i, spec in enumerate(SETTINGS)),
            {"name": TIMESTEP_FLAG, "type": "boolean", "default": True, "label": TIMESTEP_LABEL,
             "infotext_key": TIMESTEP_INFOTEXT_KEY, "infotext_keys": list(NOISE_LEVEL_INFOTEXT_KEYS),
             "position": len(SETTINGS) + 1,
             "help": f"Optional (null or missing: the Settings page's default, on). {TIMESTEP_HELP} "
                     f"Each infotext key is written only when it changed the result."},
        ],
    }

