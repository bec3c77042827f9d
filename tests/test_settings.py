"""The settings table, argument parsing and the validation policy (issue 3, SPEC §2)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.settings import (
    DEFAULT_SETTINGS,
    ENABLED_INFOTEXT_KEY,
    NOTE_INFOTEXT_KEY,
    SETTINGS,
    SettingsError,
    lookup_spec,
    parse_bool,
    parse_script_args,
    schema,
    settings_from_infotext,
)

FULL = [True, 1, 0.5, 4, 0, 0.5, 2]
TABLE = {  # SPEC §2, written out again on purpose: the table must not drift from the spec
    "mask_blend_power": ("Schedule bias", "Soft inpainting schedule bias", 0, 8, 0.1, 1),
    "mask_blend_scale": ("Preservation strength", "Soft inpainting preservation strength", 0, 8, 0.05, 0.5),
    "inpaint_detail_preservation": ("Transition contrast boost", "Soft inpainting transition contrast boost",
                                    1, 32, 0.5, 4),
    "composite_mask_influence": ("Mask influence", "Soft inpainting mask influence", 0, 1, 0.05, 0),
    "composite_difference_threshold": ("Difference threshold", "Soft inpainting difference threshold",
                                       0, 8, 0.25, 0.5),
    "composite_difference_contrast": ("Difference contrast", "Soft inpainting difference contrast",
                                      0, 8, 0.25, 2),
}


def quiet_parse(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_script_args(args)


def test_table_matches_spec():
    assert [s.name for s in SETTINGS] == list(TABLE)
    for spec in SETTINGS:
        label, key, lo, hi, step, default = TABLE[spec.name]
        assert (spec.label, spec.infotext_key, spec.minimum, spec.maximum, spec.step, spec.default) == (
            label, key, lo, hi, step, default)


def test_positional_constructor_matches_upstream_order():
    s = SoftInpaintingSettings(1.5, 0.25, 8, 0.5, 1.0, 3)
    assert s.values() == (1.5, 0.25, 8, 0.5, 1.0, 3)
    assert s == SoftInpaintingSettings(**s.as_dict())


@pytest.mark.parametrize("args, expected", [
    (FULL, DEFAULT_SETTINGS.values()),
    ([True], DEFAULT_SETTINGS.values()),
    ([True, 0.2], (0.2, 0.5, 4, 0, 0.5, 2)),
    ([True, None, None, 8], (1, 0.5, 8, 0, 0.5, 2)),
    (["true", "0.2", "0.05", "1", "0", "1.25", "1.25"], (0.2, 0.05, 1, 0, 1.25, 1.25)),
    ([True, 1, 0.5, 4, 0, 0.5, 2, True, "extra", 99], DEFAULT_SETTINGS.values()),
    ([True, {"schedule_bias": 0.2, "difference_threshold": 1.25}], (0.2, 0.5, 4, 0, 1.25, 2)),
    ([True, {"mask_blend_power": 3, "composite_difference_contrast": "4"}], (3, 0.5, 4, 0, 0.5, 4)),
    ([True, {"Difference threshold": 2}], (1, 0.5, 4, 0, 2, 2)),
])
def test_accepted_argument_forms(args, expected):
    parsed = quiet_parse(args)
    assert parsed.enabled is (str(args[0]).lower() == "true")
    assert parsed.settings.values() == pytest.approx(expected)


def test_empty_and_disabled_lists():
    assert parse_script_args([]).enabled is False
    assert parse_script_args([False]).enabled is False
    assert parse_script_args(["false", 1]).enabled is False
    assert parse_script_args([None]).enabled is False


def test_timestep_flag_positional_and_named():
    assert parse_script_args(FULL).timestep_as_noise_level is None
    assert parse_script_args([*FULL, False]).timestep_as_noise_level is False
    assert parse_script_args([*FULL, "true"]).timestep_as_noise_level is True
    assert parse_script_args([True, {"timestep_as_noise_level": False}]).timestep_as_noise_level is False


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "abc", "nan", [1], {}, object(),
                                 True])
def test_invalid_values_are_rejected_with_name_and_range(bad):
    with pytest.raises(SettingsError) as info:
        parse_script_args([True, 1, 0.5, 4, 0, bad, 2]) if not isinstance(bad, dict) else \
            parse_script_args([True, {"difference_threshold": float("nan")}])
    message = str(info.value)
    assert "Difference threshold" in message and "0 to 8" in message


def test_unknown_named_setting_is_rejected():
    with pytest.raises(SettingsError, match="unknown soft inpainting setting 'threshold'"):
        parse_script_args([True, {"threshold": 1}])


def test_dict_must_follow_enabled():
    """Anywhere else a dict is a bad value for that position's setting (named in the error)."""
    with pytest.raises(SettingsError, match=r"Preservation strength .*\{'difference_threshold': 1\}"):
        parse_script_args([True, 1, {"difference_threshold": 1}])


@pytest.mark.parametrize("bad_enabled", ["maybe", 2, [True]])
def test_bad_enabled_flag(bad_enabled):
    with pytest.raises(SettingsError, match="true or false"):
        parse_script_args([bad_enabled])


@pytest.mark.parametrize("name, value, clamped", [
    ("inpaint_detail_preservation", 0, 1), ("inpaint_detail_preservation", 1e6, 32),
    ("mask_blend_power", -3, 0), ("composite_mask_influence", 1.5, 1),
    ("composite_difference_threshold", 100, 8), ("composite_difference_contrast", -1, 0),
])
def test_out_of_range_is_clamped_with_warning_and_note(name, value, clamped):
    with pytest.warns(UserWarning, match="clamped"):
        s = SoftInpaintingSettings(**{name: value})
    assert getattr(s, name) == clamped
    note = s.infotext()[NOTE_INFOTEXT_KEY]
    assert lookup_spec(name).label in note and "clamped" in note
    # The infotext records the value used, so pasting it back reproduces the picture.
    assert settings_from_infotext(s.infotext())[1] == s


def test_in_range_values_give_no_warning_and_no_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = SoftInpaintingSettings(8, 0, 32, 1, 0, 8)
    assert NOTE_INFOTEXT_KEY not in s.infotext()


def test_numpy_and_torch_scalars_are_numbers():
    s = SoftInpaintingSettings(np.float32(0.5), torch.tensor(0.25), np.int64(4), 0, 0.5, 2)
    assert s.values() == (0.5, 0.25, 4, 0, 0.5, 2)


def test_infotext_has_the_seven_keys():
    entries = SoftInpaintingSettings(0.2, 0.05, 1, 0, 1.25, 1.25).infotext()
    assert entries == {
        ENABLED_INFOTEXT_KEY: True,
        "Soft inpainting schedule bias": 0.2, "Soft inpainting preservation strength": 0.05,
        "Soft inpainting transition contrast boost": 1, "Soft inpainting mask influence": 0,
        "Soft inpainting difference threshold": 1.25, "Soft inpainting difference contrast": 1.25,
    }


@pytest.mark.parametrize("params, expected_enabled, expected", [
    ({}, False, DEFAULT_SETTINGS.values()),
    ({ENABLED_INFOTEXT_KEY: "True", "Soft inpainting schedule bias": "0.2"}, True, (0.2, 0.5, 4, 0, 0.5, 2)),
    ({ENABLED_INFOTEXT_KEY: "True", "Soft inpainting schedule bias": "abc"}, True, DEFAULT_SETTINGS.values()),
    ({ENABLED_INFOTEXT_KEY: "yes please", "Soft inpainting difference threshold": "1e9"}, False,
     (1, 0.5, 4, 0, 8, 2)),
    ({ENABLED_INFOTEXT_KEY: True, "Soft inpainting difference contrast": "-5"}, True, (1, 0.5, 4, 0, 0.5, 0)),
    ({ENABLED_INFOTEXT_KEY: True, "Soft inpainting mask influence": "nan"}, True, DEFAULT_SETTINGS.values()),
])
def test_infotext_reading_never_raises(params, expected_enabled, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enabled, settings = settings_from_infotext(params)
    assert enabled is expected_enabled
    assert settings.values() == pytest.approx(expected)


def test_parse_bool_strings():
    assert parse_bool("TRUE") and parse_bool(" on ") and parse_bool(1)
    assert not parse_bool("false") and not parse_bool("0") and not parse_bool(0.0)


def test_schema_lists_every_setting_in_positional_order():
    doc = schema()
    assert doc["args_order"][:7] == ["enabled", *(s.name for s in SETTINGS)]
    by_name = {entry["name"]: entry for entry in doc["settings"]}
    for spec in SETTINGS:
        entry = by_name[spec.name]
        assert (entry["minimum"], entry["maximum"], entry["default"]) == (
            spec.minimum, spec.maximum, spec.default)
        assert entry["position"] == doc["args_order"].index(spec.name)
    assert doc["example_full"] == [True, 1, 0.5, 4, 0, 0.5, 2]
    assert all(math.isfinite(v) for v in doc["example_full"][1:])


# ---------------------------------------------------------------- issue 3 item 1, form by form

DEFAULTS = DEFAULT_SETTINGS.values()


@pytest.mark.parametrize("position", range(8))
def test_none_in_any_position_means_its_default(position):
    args = [*FULL, False]
    args[position] = None
    parsed = parse_script_args(args)
    assert parsed.enabled is (position != 0)  # a missing enabled flag means off
    assert parsed.settings.values() == DEFAULTS
    assert parsed.timestep_as_noise_level is (None if position == 7 else False)


@pytest.mark.parametrize("length", range(8))
def test_every_short_list_takes_the_rest_from_defaults(length):
    custom = [True, 2, 1, 8, 0.5, 4, 6]
    parsed = parse_script_args(custom[:length])
    given = custom[1:length]
    assert parsed.settings.values() == (*given, *DEFAULTS[len(given):])
    assert parsed.enabled is (length > 0)


@pytest.mark.parametrize("text, expected", [("true", True), ("True", True), (" TRUE ", True),
                                            ("false", False), ("False", False), ("yes", True), ("off", False),
                                            ("1", True), ("0", False), ("", False)])
def test_booleans_as_strings(text, expected):
    assert parse_script_args([text]).enabled is expected
    assert parse_script_args([*FULL, text]).timestep_as_noise_level is expected


def test_ints_and_numeric_strings_become_floats():
    parsed = parse_script_args([1, 2, "1", 8, "0", " 4 ", "6.5"])
    assert parsed.enabled is True
    assert parsed.settings.values() == (2, 1, 8, 0, 4, 6.5)
    assert all(type(v) is float for v in parsed.settings.values())


def test_numpy_and_torch_flags():
    assert parse_script_args([np.bool_(True)]).enabled is True
    assert parse_script_args([torch.tensor(False)]).enabled is False


def alias_kinds(spec):
    return {"python name": spec.name, "snake label": spec.snake_label, "label": spec.label,
            "infotext key": spec.infotext_key, "upper, padded": f"  {spec.snake_label.upper()} "}


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.name)
def test_named_settings_by_every_accepted_spelling(spec):
    value = spec.minimum + 3 * spec.step
    for kind, key in alias_kinds(spec).items():
        parsed = parse_script_args([True, {key: value}])
        expected = {**DEFAULT_SETTINGS.as_dict(), spec.name: value}
        assert parsed.settings.as_dict() == pytest.approx(expected), kind


def test_named_dict_with_none_values_and_flag():
    parsed = parse_script_args(["true", {"schedule_bias": None, "difference_contrast": "3",
                                         "timestep_as_noise_level": "false"}])
    assert parsed.settings.values() == (1, 0.5, 4, 0, 0.5, 3)
    assert parsed.timestep_as_noise_level is False


def test_the_issue_example():
    parsed = parse_script_args([True, {"schedule_bias": 0.2, "difference_threshold": 1.25}])
    assert parsed.enabled and parsed.settings.mask_blend_power == 0.2
    assert parsed.settings.composite_difference_threshold == 1.25


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("form", ["positional", "named"])
def test_out_of_range_through_the_api_is_clamped_warned_and_noted(spec, side, form):
    value = spec.minimum - 0.5 if side == "below" else spec.maximum * 10 + 1
    index = SETTINGS.index(spec)
    if form == "positional":
        args = list(FULL)
        args[1 + index] = value
    else:
        args = [True, {spec.snake_label: value}]
    with pytest.warns(UserWarning, match=spec.label):
        parsed = parse_script_args(args)
    used = spec.minimum if side == "below" else spec.maximum
    assert getattr(parsed.settings, spec.name) == used
    assert len(parsed.settings.adjustments) == 1
    note = parsed.settings.infotext()[NOTE_INFOTEXT_KEY]
    assert spec.label in note and "clamped" in note and spec.range_text in note
    assert parsed.settings.infotext()[spec.infotext_key] == used


BAD_VALUES = [float("nan"), float("inf"), -float("inf"), "nan", "NaN", "inf", "-Infinity", "1e400", "-1e400",
              10 ** 400, -(10 ** 400), "abc", "", "0x10", "1,5", b"0.5", [0.5], (0.5,), {}, object(), True,
              False, complex(1, 0), np.float32("nan"), np.array([0.5]), torch.tensor(float("inf")),
              torch.tensor([1.0, 2.0])]


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda v: type(v).__name__ + ":" + repr(v)[:12])
def test_bad_values_are_rejected_naming_setting_value_and_range(spec, bad):
    args = list(FULL)
    args[1 + SETTINGS.index(spec)] = bad
    forms = [[True, {spec.name: bad}]]
    if not (isinstance(bad, dict) and spec is SETTINGS[0]):  # there a dict is the named form
        forms.append(args)
    for form in forms:
        with pytest.raises(SettingsError) as info:
            parse_script_args(form)
        message = str(info.value)
        assert spec.label in message and spec.name in message and spec.range_text in message
        scalar = getattr(bad, "ndim", None) == 0  # numpy / torch scalars are shown by their value
        shown = repr(bad.item() if scalar else bad)
        assert shown[:40] in message or "..." in message  # the value, shortened when long


def test_huge_integers_are_rejected_not_crashes():
    """Python's json turns 1e400-style integers into ints beyond float range."""
    for args in ([True, 10 ** 400], [10 ** 400], [*FULL, 10 ** 400], [True, {"schedule_bias": -(10 ** 400)}],
                 [True, 10 ** 5000]):  # more digits than repr() allows by default
        with pytest.raises(SettingsError):
            parse_script_args(args)


def test_unprintable_values_are_still_reported():
    class BrokenRepr:
        def __repr__(self):
            raise RuntimeError("no repr")

    with pytest.raises(SettingsError, match="BrokenRepr"):
        parse_script_args([True, BrokenRepr()])
    with pytest.raises(SettingsError, match="must be true or false"):
        parse_script_args([BrokenRepr()])


def test_whole_vector_none_is_disabled():
    parsed = parse_script_args(None)
    assert parsed.enabled is False and parsed.settings == DEFAULT_SETTINGS


@pytest.mark.parametrize("args", ["true", b"true", 5, 1.5, {"schedule_bias": 1}, object()],
                         ids=lambda a: type(a).__name__)
def test_a_vector_that_is_not_a_list_is_rejected(args):
    with pytest.raises(SettingsError, match="must be a list"):
        parse_script_args(args)


def test_tuples_and_iterators_are_lists_too():
    assert parse_script_args(tuple(FULL)).settings == DEFAULT_SETTINGS
    assert parse_script_args(iter([True, 2])).settings.mask_blend_power == 2


def test_extra_trailing_values_after_a_dict_are_ignored():
    parsed = parse_script_args([True, {"schedule_bias": 3}, "anything", None])
    assert parsed.settings.mask_blend_power == 3


def test_negative_zero_is_zero_in_the_infotext():
    parsed = parse_script_args([True, -0.0, -0.0, 1, -0.0, -0.0, -0.0])
    assert parsed.settings.adjustments == ()
    assert all(str(v) == "0" for k, v in parsed.settings.infotext().items() if k != ENABLED_INFOTEXT_KEY
               and k != "Soft inpainting transition contrast boost")
