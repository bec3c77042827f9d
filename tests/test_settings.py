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
    with pytest.raises(SettingsError, match="one dict right after"):
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
        assert (entry["minimum"], entry["maximum"], entry["default"]) == (spec.minimum, spec.maximum, spec.default)
        assert entry["position"] == doc["args_order"].index(spec.name)
    assert doc["example_full"] == [True, 1, 0.5, 4, 0, 0.5, 2]
    assert all(math.isfinite(v) for v in doc["example_full"][1:])
