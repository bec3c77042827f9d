"""The extension's face towards WebUI users: the accordion, infotext and paste-back, the API
(arguments, the settings route), the X/Y/Z plot, the Settings page, presets, mask previews, and
living beside the built-in extension. All through the WebUI stand-in (``tests/host``)."""

from __future__ import annotations

import math
import typing

import gradio as gr
import numpy as np
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from modules import errors, infotext_utils, processing, script_callbacks, scripts, shared
from modules.ui_components import InputAccordion
from webui_harness import disc_mask, photo, start_webui

import lib_soft_inpainting
from lib_soft_inpainting.ui import PRESETS, preset_updates

SIZE = (128, 128)
JOB = {"width": SIZE[0], "height": SIZE[1], "mask": disc_mask(SIZE, (44, 44, 84, 84))}

# SPEC §2, written out here independently of the settings table.
SLIDERS = [
    ("Schedule bias", "Soft inpainting schedule bias", 0, 8, 0.1, 1),
    ("Preservation strength", "Soft inpainting preservation strength", 0, 8, 0.05, 0.5),
    ("Transition contrast boost", "Soft inpainting transition contrast boost", 1, 32, 0.5, 4),
    ("Mask influence", "Soft inpainting mask influence", 0, 1, 0.05, 0),
    ("Difference threshold", "Soft inpainting difference threshold", 0, 8, 0.25, 0.5),
    ("Difference contrast", "Soft inpainting difference contrast", 0, 8, 0.25, 2),
]
KEYS = ["Soft inpainting enabled", *(row[1] for row in SLIDERS)]


@pytest.fixture
def webui():
    return start_webui()


def _ours(webui):
    return webui.runner.inputs[webui.script.args_from:webui.script.args_to]


def _run_with(webui, script_args, **kwargs):
    p = webui.job(script_args=script_args, **{**JOB, **kwargs})
    return p, processing.process_images(p)


# --- registration and the accordion ----------------------------------------------------------------------

def test_script_is_always_on_in_img2img_inpaint_and_among_txt2img_scripts(webui) -> None:
    script = webui.script
    assert script.title() == "Soft Inpainting"
    assert script.show(True) is scripts.AlwaysVisible and script.show(False) is scripts.AlwaysVisible
    assert script.section == "inpaint"
    assert webui.txt2img_script.section is None  # the host builds no "inpaint" section on txt2img


def test_accordion_holds_the_six_sliders_of_the_spec(webui) -> None:
    controls = _ours(webui)
    assert isinstance(controls[0], InputAccordion) and controls[0].value is False
    assert controls[0].label == "Soft inpainting"
    sliders = controls[1:7]
    for slider, (label, _, minimum, maximum, step, default) in zip(sliders, SLIDERS, strict=True):
        assert isinstance(slider, gr.Slider)
        assert (slider.label, slider.minimum, slider.maximum, slider.step, slider.value) == \
            (label, minimum, maximum, step, default)
        assert slider.info, f"{label} has short help for users"


def test_script_module_re_exports_the_public_names(webui) -> None:
    for name in lib_soft_inpainting.__all__:
        assert getattr(webui.extension, name) is getattr(lib_soft_inpainting, name)


# --- infotext and paste-back ------------------------------------------------------------------------------

def test_enabled_job_writes_the_seven_infotext_keys(webui) -> None:
    _, processed = _run_with(webui, webui.args(True, 0.3, 1.25, 8, 0.5, 2.25, 1.5))
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    assert [params[k] for k in KEYS] == ["True", "0.3", "1.25", "8", "0.5", "2.25", "1.5"]
    assert "Soft inpainting note" not in params and "Soft inpainting error" not in params


def _paste(webui, text):
    params = infotext_utils.parse_generation_parameters(text)
    fields = [(c, f) for c, f in webui.runner.infotext_fields if c in _ours(webui)]
    return [u.get("value", "<unchanged>") for u in infotext_utils.paste(fields, params)]


BUILTIN_INFOTEXT = ("Steps: 20, Sampler: Euler a, Seed: 1, Size: 512x512, Denoising strength: 0.75, "
                    "Mask blur: 32, Soft inpainting enabled: True, Soft inpainting schedule bias: 0.2, "
                    "Soft inpainting preservation strength: 0.05, "
                    "Soft inpainting transition contrast boost: 1, "
                    "Soft inpainting mask influence: 0, Soft inpainting difference threshold: 1.25, "
                    "Soft inpainting difference contrast: 1.25")


def test_pasting_an_infotext_of_the_builtin_restores_every_control(webui) -> None:
    values = _paste(webui, BUILTIN_INFOTEXT)
    assert values[:7] == [True, 0.2, 0.05, 1.0, 0.0, 1.25, 1.25]
    assert values[7] is False, "written before the timestep option existed: pasted back off, as it was made"


def test_our_infotext_round_trips_through_paste(webui) -> None:
    _, processed = _run_with(webui, webui.args(True, 2.5, 0.75, 6.5, 0.25, 3, 4.75), sampler_name="DDIM")
    values = _paste(webui, processed.infotexts[0])
    assert values == [True, 2.5, 0.75, 6.5, 0.25, 3.0, 4.75, True]


def test_infotext_without_soft_inpainting_switches_it_off_and_leaves_sliders(webui) -> None:
    values = _paste(webui, "Steps: 20, Sampler: Euler a, Seed: 1, Size: 512x512")
    assert values[0] is False and values[1:7] == ["<unchanged>"] * 6


@pytest.mark.parametrize("bad", ["abc", "1e999", "-5", "nan", "", "[1, 2]", "inf"])
def test_bad_pasted_values_never_raise_and_fall_back(webui, bad) -> None:
    text = BUILTIN_INFOTEXT.replace("Soft inpainting preservation strength: 0.05",
                                    f"Soft inpainting preservation strength: {bad}")
    text = text.replace(", Soft inpainting difference contrast: 1.25", "")
    values = _paste(webui, text)
    assert "__error__" not in str(values)
    assert values[1] == 0.2 and values[5] == 1.25, "valid values are restored"
    assert 0 <= values[2] <= 8 and math.isfinite(values[2])
    assert values[6] == 2.0, "a missing key takes the default"


# --- the API -------------------------------------------------------------------------------------------

def _api_job(webui, args, **kwargs):
    return _run_with(webui, webui.api_args({"soft inpainting": {"args": args}}), **kwargs)


def _recorded(p):
    return [p.extra_generation_params.get(k) for k in KEYS]


@pytest.mark.parametrize(("args", "expected"), [
    ([True, 1, 0.5, 4, 0, 0.5, 2], [True, 1, 0.5, 4, 0, 0.5, 2]),
    ([True], [True, 1, 0.5, 4, 0, 0.5, 2]),
    ([True, 0.2, 0.05], [True, 0.2, 0.05, 4, 0, 0.5, 2]),
    (["true", "0.2", None, 1, "0", "1.25", 1.25, True, "extra"], [True, 0.2, 0.5, 1, 0, 1.25, 1.25]),
    ([True, {"schedule_bias": 0.2, "difference_threshold": 1.25}], [True, 0.2, 0.5, 4, 0, 1.25, 2]),
    ([True, {"mask_blend_scale": 2, "Difference contrast": 3}], [True, 1, 2, 4, 0, 0.5, 3]),
])
def test_api_args_full_short_strings_and_named(webui, args, expected) -> None:
    p, _ = _api_job(webui, args)
    assert errors.reported == []
    assert _recorded(p) == expected
    assert p.mask_round is False


def test_api_title_is_matched_case_insensitively(webui) -> None:
    script_args = webui.api_args({"Soft Inpainting": {"args": [True, 2]}})
    p, _ = _run_with(webui, script_args)
    assert p.extra_generation_params["Soft inpainting schedule bias"] == 2


def test_api_empty_args_leave_it_off(webui) -> None:
    p, _ = _api_job(webui, [])
    assert p.soft_inpainting is None and p.mask_round is True


def test_out_of_range_is_clamped_with_a_note(webui, capsys) -> None:
    p, processed = _api_job(webui, [True, 12, -1, 0.5, 2, 0.5, 2])
    assert _recorded(p) == [True, 8, 0, 1, 1, 0.5, 2]
    note = p.extra_generation_params["Soft inpainting note"]
    assert "Schedule bias 12 clamped to 8" in note and "range 0 to 8" in note
    assert "clamped" in capsys.readouterr().out
    assert len(processed.images) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", [1], {"x": 1}])
def test_invalid_values_are_rejected_before_sampling_and_the_next_job_is_clean(webui, bad, capsys) -> None:
    p, processed = _api_job(webui, [True, 1, 0.5, 4, 0, bad, 2])
    assert errors.reported == [], "a user's bad value is no host-reported error (no traceback)"
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[Soft Inpainting] Difference threshold")
    assert "0 to 8" in lines[0] and lines[0].endswith(": soft inpainting is off for this job")
    assert p.soft_inpainting is None and p.mask_round is True, "the job ran as ordinary inpainting"
    assert "Soft inpainting error" in p.extra_generation_params
    assert not any(k in p.extra_generation_params for k in KEYS)
    assert len(processed.images) == 1
    errors.reported.clear()
    p2, _ = _api_job(webui, [True])
    assert errors.reported == [] and p2.soft_inpainting is not None
    assert "Soft inpainting error" not in p2.extra_generation_params


def test_settings_route_describes_names_ranges_defaults_and_order(webui) -> None:
    app = FastAPI()
    for callback in script_callbacks.callbacks_app_started:
        callback(None, app)
    body = TestClient(app).get("/soft-inpainting/v1/settings").json()
    assert body["title"] == "Soft Inpainting"
    assert body["args_order"][:7] == ["enabled", "mask_blend_power", "mask_blend_scale",
                                      "inpaint_detail_preservation", "composite_mask_influence",
                                      "composite_difference_threshold", "composite_difference_contrast"]
    by_name = {s["name"]: s for s in body["settings"]}
    for name, row in zip(body["args_order"][1:7], SLIDERS, strict=True):
        s = by_name[name]
        described = (s["label"], s["infotext_key"], s["minimum"], s["maximum"], s["step"], s["default"])
        assert described == row and s["type"] == "number"
    assert by_name["enabled"]["type"] == "boolean" and by_name["enabled"]["position"] == 0


# --- X/Y/Z plot ------------------------------------------------------------------------------------------

def test_axes_are_registered_once_and_absent_plot_is_fine() -> None:
    webui = start_webui()
    labels = [o.label for o in webui.xyz.axis_options]
    ours = [label for label in labels if label.startswith("[Soft inpainting] ")]
    assert len(ours) == 8 and "[Soft inpainting] Difference threshold" in ours
    assert "[Soft inpainting] Noise level conversion" in ours
    for callback in script_callbacks.callbacks_before_ui:
        callback()
    assert [o.label for o in webui.xyz.axis_options] == labels, "registering twice adds nothing"
    without = start_webui(with_xyz=False)
    assert errors.reported == [] and without.xyz is None


def test_grid_over_difference_threshold_gives_one_image_per_value(webui) -> None:
    p = webui.job(script_args=webui.args(True), **JOB)
    cells = webui.xyz.Script().run_axis(p, "[Soft inpainting] Difference threshold", ["0.25", "1.25", "4"])
    thresholds = []
    for cell in cells:
        params = infotext_utils.parse_generation_parameters(cell.infotexts[0])
        thresholds.append(params["Soft inpainting difference threshold"])
    assert thresholds == ["0.25", "1.25", "4"]
    assert p.extra_generation_params == {}, "cells never write into the job they were copied from"
    kept = [np.mean(np.asarray(c.images[0]) == np.asarray(photo(SIZE))) for c in cells]
    assert kept[0] < kept[1] < kept[2], "a higher threshold keeps more original pixels"


def test_grid_over_the_switch_turns_it_on_and_off(webui) -> None:
    p = webui.job(script_args=webui.args(False), **JOB)
    on, off = webui.xyz.Script().run_axis(p, "[Soft inpainting] Enabled", ["True", "False"])
    assert "Soft inpainting enabled: True" in on.infotexts[0]
    assert "Soft inpainting" not in off.infotexts[0]


# --- Settings page, presets, previews ---------------------------------------------------------------------

def test_settings_page_defaults_fill_sliders_and_short_api_lists() -> None:
    webui = start_webui(options={"soft_inpainting_default_composite_difference_threshold": 1.25,
                                 "soft_inpainting_enabled_by_default": True})
    assert "soft_inpainting_default_composite_difference_threshold" in shared.opts.data_labels
    assert shared.opts.data_labels["soft_inpainting_enabled_by_default"].section[1] == "Soft inpainting"
    p, _ = _api_job(webui, [True])
    assert p.extra_generation_params["Soft inpainting difference threshold"] == 1.25
    p, _ = _api_job(webui, [True, None, None, None, None, None, 3])
    threshold = p.extra_generation_params["Soft inpainting difference threshold"]
    assert threshold == 1.25, "None = the user default"
    assert _ours(webui)[0].value is True


def test_presets_move_the_sliders_and_never_reach_the_infotext(webui) -> None:
    updates = preset_updates("Seamless blend")
    assert [u["value"] for u in updates] == [0.2, 0.05, 1, 0, 1.25, 1.25]
    assert all(u == gr.update() for u in preset_updates("Custom"))
    assert set(PRESETS) >= {"Default", "Seamless blend"}
    p, _ = _run_with(webui, webui.args(True, 0.2, 0.05, 1, 0, 1.25, 1.25))
    recorded = p.extra_generation_params.items()
    assert not any("preset" in k.lower() or "Seamless" in str(v) for k, v in recorded)


def test_mask_preview_is_added_when_the_host_returns_masks(webui) -> None:
    shared.opts.return_mask = True
    p, processed = _run_with(webui, webui.args(True), batch_size=2)
    # per image: the picture and the host's mask (our adaptive one); then our two labelled previews
    assert len(processed.images) == 2 * 2 + 2
    assert len(processed.infotexts) == len(processed.images)
    host_mask = np.asarray(processed.images[1].convert("L"))
    assert np.array_equal(host_mask, np.asarray(p.soft_inpainting.masks[0]))
    preview = processed.images[-2]
    assert preview.size == SIZE and preview.mode == "RGB"
    shared.opts.return_mask = False
    _, plain = _run_with(webui, webui.args(True), batch_size=2)
    assert len(plain.images) == 2


# --- beside the built-in extension ------------------------------------------------------------------------

class BuiltinStandIn(scripts.Script):
    """The built-in extension's surface: same title, same seven args; it records whether it acted."""

    acted: typing.ClassVar[list[str]] = []

    def title(self):
        return "Soft Inpainting"

    def show(self, is_img2img):
        return scripts.AlwaysVisible if is_img2img else False

    def ui(self, is_img2img):
        return [gr.Checkbox(value=False)] + [gr.Slider(value=v[5]) for v in SLIDERS]

    def process(self, p, enabled, *args):
        if enabled:
            BuiltinStandIn.acted.append("process")
            p.mask_round = False

    def on_mask_blend(self, p, mba, enabled, *args):
        if enabled:
            BuiltinStandIn.acted.append("on_mask_blend")


def test_with_the_builtin_enabled_exactly_one_acts(capsys) -> None:
    BuiltinStandIn.acted = []
    webui = start_webui(builtin_first=BuiltinStandIn)
    # The API resolves "soft inpainting" to the first script with that title: the built-in.
    script_args = webui.api_args({"soft inpainting": {"args": [True, 0.2, 0.05, 1, 0, 1.25, 1.25]}})
    p, _ = _run_with(webui, script_args)
    assert BuiltinStandIn.acted == [], "the built-in is skipped for this job"
    assert p.extra_generation_params["Soft inpainting schedule bias"] == 0.2, "ours acts with its settings"
    out = capsys.readouterr().out
    assert "built-in" in out and "Extensions" in out


def test_with_only_ours_enabled_the_builtin_stays_quiet() -> None:
    BuiltinStandIn.acted = []
    webui = start_webui(builtin_first=BuiltinStandIn)
    p, _ = _run_with(webui, webui.args(True, 3))
    assert BuiltinStandIn.acted == []
    assert p.extra_generation_params["Soft inpainting schedule bias"] == 3


# --- command-line options ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("choice", "expected"), [("auto", "meta"), ("cpu", "cpu"), (None, "meta")])
def test_post_sample_device_follows_the_command_line(choice, expected) -> None:
    webui = start_webui(cmd_opts={} if choice is None else {"soft_inpainting_device": choice})
    assert str(webui.extension._post_sample_device(torch.empty(1, device="meta"))) == expected


def test_cuda_requested_without_cuda_falls_back_to_the_cpu(monkeypatch) -> None:
    webui = start_webui(cmd_opts={"soft_inpainting_device": "cuda"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert webui.extension._post_sample_device(torch.empty(1)) == "cpu"
    _, processed = _run_with(webui, webui.args(True))
    assert errors.reported == [] and len(processed.images) == 1
