"""Soft inpainting in ADetailer's inner passes, on txt2img and img2img, in the WebUI stand-in.

ADetailer is the stand-in of ``tests/host/extensions/adetailer`` (it mirrors ADetailer 25.3.0): it
copies the outer job's runner, keeps the always-on scripts by file name stem, and runs an inner
img2img job with its own blurred mask from the outer job's ``postprocess_image``. The pictures are
swapped for photos before it looks at them (the fake model paints flat colour), as on the real host.
"""

from __future__ import annotations

from copy import copy

import numpy as np
import pytest
from fake_model import FakeFlowModel
from modules import errors, infotext_utils, processing, scripts, shared
from webui_harness import HOSTS, photo, start_webui

from lib_soft_inpainting.settings import (
    CHANNELS_INFOTEXT_KEY,
    ENABLED_INFOTEXT_KEY,
    FLOW_INFOTEXT_KEY,
    SETTINGS,
)
from soft_inpainting_webui import inner_passes
from soft_inpainting_webui.job import job_state

SIZE = 160
BOX = (48, 48, 72, 72)  # the region the stand-in's detector finds
SECOND = (104, 24, 128, 48)


def _beyond_reach(box: tuple[int, int, int, int], blur: int) -> np.ndarray:
    """Pixels the inner pass may not change: beyond the blurred mask, the 8-pixel latent grid and the
    composite's filter (5 latent pixels) and blur (radius 4)."""
    return ~_reach(box, 3 * blur + 40)
USED_IN = inner_passes.USED_IN_KEY


@pytest.fixture(autouse=True)
def _threads(one_torch_thread):
    yield


def _reach(box: tuple[int, int, int, int], margin: int) -> np.ndarray:
    """Pixels within ``margin`` of ``box`` (Chebyshev distance), as a boolean map."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    x1, y1, x2, y2 = box
    distance = np.maximum(np.maximum(x1 - xx, xx - x2), np.maximum(y1 - yy, yy - y2))
    return distance <= margin


def _ring(box: tuple[int, int, int, int], blur: int) -> np.ndarray:
    """The inner mask's grey ring: near the box's edge, inside the blur's reach."""
    return _reach(box, 2 * blur) & ~_reach((box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6), 0)


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


class _Seen(list):
    pictures: list[tuple[int, int]]


@pytest.fixture
def inner_jobs(monkeypatch):
    """Every inner job that reported to an outer job, with that outer job (``pictures``: the outer
    job's picture each one worked on)."""
    seen = _Seen()
    seen_pictures: list[tuple[int, int]] = []
    original = inner_passes.report

    def record(p, outer, keys):
        seen.append((p, outer))
        seen_pictures.append((outer.iteration, outer.batch_index))
        original(p, outer, keys)

    monkeypatch.setattr(inner_passes, "report", record)
    seen.pictures = seen_pictures
    return seen


def _webui(monkeypatch, host="a1111", boxes=(BOX,), **kwargs):
    webui = start_webui(adetailer=True, photo_swap=True, host=host, **kwargs)
    monkeypatch.setattr(webui.adetailer, "detector", lambda image: list(boxes))
    errors.reported.clear()
    return webui


def _txt2img(webui, ours, adetailer=None, **kwargs):
    p = webui.txt2img_job(script_args=webui.txt2img_args(*ours, adetailer=adetailer),
                          **{"width": SIZE, "height": SIZE, **kwargs})
    return p, processing.process_images(p)


def _img2img(webui, ours, adetailer=None, **kwargs):
    p = webui.job(script_args=webui.args(*ours, adetailer=adetailer),
                  init_images=[photo((SIZE, SIZE), seed=3)], **{"width": SIZE, "height": SIZE, **kwargs})
    return p, processing.process_images(p)


# --- the txt2img accordion -------------------------------------------------------------------------------

def test_txt2img_accordion_is_off_collapsed_names_adetailer_and_has_ids_of_its_own() -> None:
    webui = start_webui(options={"soft_inpainting_enabled_by_default": True})
    txt2img = webui.txt2img_runner.inputs[webui.txt2img_script.args_from:webui.txt2img_script.args_to]
    img2img = webui.runner.inputs[webui.script.args_from:webui.script.args_to]
    assert len(txt2img) == len(img2img) == 8
    accordion = txt2img[0]
    assert accordion.value is False and accordion.accordion.open is False  # whatever the Settings page says
    assert "ADetailer" in accordion.label
    assert img2img[0].value is True and img2img[0].label == "Soft inpainting"
    ids_txt2img = {c.elem_id for c in txt2img} | {accordion.accordion_id}
    ids_img2img = {c.elem_id for c in img2img} | {img2img[0].accordion_id}
    assert not ids_txt2img & ids_img2img
    assert all(i.startswith("txt2img_soft_inpaint_") for i in ids_txt2img)
    assert webui.txt2img_script.infotext_fields and webui.txt2img_script.paste_field_names


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("enable_hr", [False, True])
def test_a_txt2img_job_without_adetailer_is_bit_identical_with_it_on_or_off(host, enable_hr) -> None:
    webui = start_webui(host=host)
    results = []
    for ours in ([True, 1, 8, 4, 0.5, 1, 2], [False]):
        p = webui.txt2img_job(script_args=webui.txt2img_args(*ours), width=64, height=64, batch_size=2,
                              enable_hr=enable_hr)
        processed = processing.process_images(p)
        results.append(([_pixels(i) for i in processed.images], processed.infotexts))
    (on_images, on_text), (off_images, off_text) = results
    assert all(np.array_equal(a, b) for a, b in zip(on_images, off_images, strict=True))
    assert on_text == off_text and not any("Soft inpainting" in t for t in on_text)
    assert errors.reported == []


# --- ADetailer's inner passes ----------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("only_masked", [True, False])
def test_on_txt2img_the_inner_pass_blends_in_its_own_mask_with_the_users_settings(
        monkeypatch, inner_jobs, host, only_masked) -> None:
    webui = _webui(monkeypatch, host)
    blur = 6
    ad = {"ad_mask_blur": blur, "ad_inpaint_only_masked": only_masked}
    runs = {}
    for strength in (0, 0.5, 8):
        _, processed = _txt2img(webui, [True, 1, strength, 4, 0, 0.5, 2], ad)
        runs[strength] = _pixels(processed.images[0])
    _, hard = _txt2img(webui, [False], ad)
    ring, far = _ring(BOX, blur), _beyond_reach(BOX, blur)
    difference = np.abs(runs[0] - runs[8]).max(-1)
    assert difference[ring].mean() > 10  # the per-step blend acts in the inner mask's grey ring
    # Beyond the blurred mask's reach the photo stays exact (strength 0 regenerates everywhere: SPEC §5).
    original = _pixels(photo((SIZE, SIZE), seed=1))
    assert np.array_equal(runs[0.5][far], original[far]) and np.array_equal(runs[8][far], original[far])
    assert not np.array_equal(_pixels(hard.images[0]), runs[8])
    used = [(job_state(p).settings.mask_blend_scale, p.mask_blur, bool(p.inpaint_full_res))
            for p, _ in inner_jobs]
    assert used == [(s, blur, only_masked) for s in (0, 0.5, 8)]
    assert all(inner_passes.outer_job(p) is outer and outer.scripts is webui.txt2img_runner
               for p, outer in inner_jobs)
    assert errors.reported == []


@pytest.mark.parametrize("ours_first", [False, True])
def test_the_final_infotext_says_where_soft_inpainting_was_used(monkeypatch, ours_first) -> None:
    webui = _webui(monkeypatch, ours_first=ours_first)  # the order of the scripts does not matter
    ours = [True, 0.5, 2.5, 8, 0.25, 1.5, 3]
    _, processed = _txt2img(webui, ours, {"ad_mask_blur": 16})
    text = processed.infotexts[0]
    assert f"{USED_IN}: ADetailer" in text and "ADetailer version: 25.3.0" in text
    assert f"{ENABLED_INFOTEXT_KEY}: True" in text
    params = infotext_utils.parse_generation_parameters(text)
    script = webui.txt2img_script
    pasted = infotext_utils.paste(script.infotext_fields, params)
    assert [u["value"] for u in pasted[:7]] == [True, *(float(v) for v in ours[1:])]
    assert params[SETTINGS[1].infotext_key] == "2.5"


def test_only_the_pictures_an_inner_pass_changed_mention_it(monkeypatch) -> None:
    webui = _webui(monkeypatch)
    calls = []

    def every_second(image):
        calls.append(image)
        return [BOX] if len(calls) % 2 == 0 else []

    monkeypatch.setattr(webui.adetailer, "detector", every_second)
    p, processed = _txt2img(webui, [True], {"ad_mask_blur": 16}, batch_size=2, n_iter=2)
    assert [USED_IN in t for t in processed.infotexts] == [False, True, False, True]
    assert all("ADetailer version" in t for t in processed.infotexts)
    grid = processing.create_infotext(p, use_main_prompt=True)
    assert USED_IN in grid


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("outer", ["txt2img", "img2img"])
@pytest.mark.parametrize("only_masked", [True, False])
def test_batches_of_two_with_two_faces_each(monkeypatch, inner_jobs, host, outer, only_masked) -> None:
    second = SECOND
    webui = _webui(monkeypatch, host, boxes=(BOX, second))
    ad = {"ad_mask_blur": 8, "ad_inpaint_only_masked": only_masked}
    run = _txt2img if outer == "txt2img" else _img2img
    big_mask = {} if outer == "txt2img" else {"mask": _full_mask()}
    results = {}
    for strength in (0, 8):
        inner_jobs.clear()
        inner_jobs.pictures.clear()
        _, processed = run(webui, [True, 1, strength], ad, batch_size=2, **big_mask)
        results[strength] = [_pixels(i) for i in processed.images]
        assert len(inner_jobs) == 4 and len({id(j) for j, _ in inner_jobs}) == 4
        assert inner_jobs.pictures == [(0, 0), (0, 0), (0, 1), (0, 1)]
        assert all(f"{USED_IN}: ADetailer" in t for t in processed.infotexts)
    for index in range(2):
        difference = np.abs(results[0][index] - results[8][index]).max(-1)
        for box in (BOX, second):
            assert difference[_ring(box, 8)].mean() > 5
    assert errors.reported == []


def _full_mask():
    from PIL import Image

    return Image.new("L", (SIZE, SIZE), 255)


def test_a_low_mask_blur_is_said_once_per_job_naming_adetailers_setting(monkeypatch, capsys) -> None:
    webui = _webui(monkeypatch, boxes=(BOX, SECOND))
    _txt2img(webui, [True], {"ad_mask_blur": 4}, batch_size=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if "ad_mask_blur" in line]
    assert len(lines) == 1 and "Inpaint mask blur" in lines[0] and "4" in lines[0] and "16" in lines[0]
    _txt2img(webui, [True], {"ad_mask_blur": 4})
    assert sum("ad_mask_blur" in line for line in capsys.readouterr().out.splitlines()) == 1  # the next job
    _txt2img(webui, [True], {"ad_mask_blur": 16})
    _txt2img(webui, [False], {"ad_mask_blur": 4})
    assert "ad_mask_blur" not in capsys.readouterr().out
    # An img2img job's own low mask blur is not ADetailer's: ADetailer hands a copy of that job to
    # ``process`` at the end of each batch, which must not be taken for a pass of its own.
    _img2img(webui, [True], {"ad_mask_blur": 32}, mask=_full_mask(), mask_blur=4, batch_size=2)
    out = capsys.readouterr().out
    assert "blurs its mask" not in out and errors.reported == []


# --- nothing crosses jobs --------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_an_img2img_soft_job_keeps_its_masks_and_overlays_through_the_inner_passes(monkeypatch, host) -> None:
    webui = _webui(monkeypatch, host, boxes=(BOX,), options={"return_mask": True})
    ours = [True, 1, 0.5, 4, 0, 0.5, 2]
    ad = {"ad_mask_blur": 8}
    mask = _full_mask()
    _, without = _img2img(webui, ours, None, mask=mask, batch_size=2, n_iter=2)
    seen = {}
    original_postprocess_image = webui.adetailer.AfterDetailerScript.postprocess_image

    def ids(p, state):
        return [[id(x) for x in items] for items in (state.masks, state.overlays, p.overlay_images)]

    def watch(self, p, pp, *args):
        state = job_state(p)
        before = ids(p, state)
        original_postprocess_image(self, p, pp, *args)
        after = ids(p, state)
        seen.setdefault("same", []).append(before == after and job_state(p) is state)

    monkeypatch.setattr(webui.adetailer.AfterDetailerScript, "postprocess_image", watch)
    p_with, with_ad = _img2img(webui, ours, ad, mask=mask, batch_size=2, n_iter=2)
    assert seen["same"] == [True] * 4
    assert errors.reported == []  # no IndexError in postprocess_maskoverlay for the second picture
    # The outer job's adaptive mask previews come back for all four pictures (none taken by ADetailer's
    # call of postprocess with a copy of the job), as without ADetailer.
    # Per picture: the picture and the host's mask, then the four previews at the end.
    assert len(with_ad.images) == len(without.images) == 4 * 2 + 4
    assert len(job_state(p_with).previews) == 0 and len(with_ad.infotexts) == 12
    assert USED_IN not in " ".join(without.infotexts) and USED_IN in with_ad.infotexts[0]
    far = _beyond_reach(BOX, 8)
    first = _pixels(with_ad.images[0])
    assert np.array_equal(first[far], _pixels(without.images[0])[far])


def test_the_inner_pass_has_its_own_state_and_the_outer_job_gets_callables(monkeypatch, inner_jobs) -> None:
    webui = _webui(monkeypatch)
    p, _ = _txt2img(webui, [True], {"ad_mask_blur": 16})
    assert job_state(p) is None  # the txt2img job itself carries no soft-inpainting state
    inner, outer = inner_jobs[0]
    assert outer is p and job_state(inner) is not None and inner_passes.outer_job(inner) is p
    ours = {k: v for k, v in p.extra_generation_params.items() if "Soft inpainting" in k}
    assert ours and all(callable(v) for v in ours.values())
    assert not any(callable(v) for v in inner.extra_generation_params.values())


def test_a_top_level_job_is_never_taken_for_an_inner_pass() -> None:
    webui = start_webui()
    p, processed = webui.run(width=64, height=64)
    assert inner_passes.outer_job(p) is None and USED_IN not in processed.infotexts[0]
    # This frame holds the finished job as ``p``: the next job is not an inner pass of it.
    second, processed = webui.run(width=64, height=64)
    assert inner_passes.outer_job(second) is None and USED_IN not in processed.infotexts[0]
    assert inner_passes.enclosing_job(copy(p)) is None


def test_x_y_z_values_on_txt2img_reach_the_inner_pass(monkeypatch, inner_jobs) -> None:
    webui = _webui(monkeypatch)
    plots = [next(s for s in runner.selectable_scripts if s.title().lower() == "x/y/z plot")
             for runner in (webui.txt2img_runner, webui.runner)]
    labels = [[o.label for o in plot.current_axis_options if o.label.startswith("[Soft inpainting]")]
              for plot in plots]
    assert labels[0] == labels[1] and "[Soft inpainting] Preservation strength" in labels[0]  # both tabs
    plot = plots[0]
    p = webui.txt2img_job(script_args=webui.txt2img_args(True, adetailer={"ad_mask_blur": 16}), width=SIZE,
                          height=SIZE)
    cells = plot.run_axis(p, "[Soft inpainting] Preservation strength", ["0", "8"])
    assert [job_state(j).settings.mask_blend_scale for j, _ in inner_jobs] == [0, 8]
    assert "preservation strength: 8" in cells[1].infotexts[0]


def test_the_txt2img_route_runs_the_extension_and_checks_the_request(monkeypatch) -> None:
    from fastapi.testclient import TestClient

    webui = _webui(monkeypatch)
    app, _ = webui.start_api()
    client = TestClient(app)
    bad = client.post("/sdapi/v1/txt2img",
                      json={"alwayson_scripts": {"soft inpainting": {"args": [True, 1, "abc"]}}})
    assert bad.status_code == 422 and bad.json()["setting"] == "mask_blend_scale"
    shared.opts.ad_script_names = ""
    body = {"width": SIZE, "height": SIZE,
            "alwayson_scripts": {"soft inpainting": {"args": [True, 1, 8]},
                                 "ADetailer": {"args": [True, False, {"ad_mask_blur": 16}]}}}
    good = client.post("/sdapi/v1/txt2img", json=body)
    assert good.status_code == 200
    import json

    info = json.loads(good.json()["info"])
    assert f"{USED_IN}: ADetailer" in info["infotexts"][0]
    assert info["extra_generation_params"][USED_IN] is None  # a callable: the host's JSON holds null
    assert errors.reported == []


def test_the_stand_in_filters_by_file_name_stem(monkeypatch) -> None:
    webui = _webui(monkeypatch)
    p = webui.txt2img_job(script_args=webui.txt2img_args(True), width=SIZE, height=SIZE)
    ad = next(s for s in webui.txt2img_runner.alwayson_scripts
              if isinstance(s, webui.adetailer.AfterDetailerScript))
    runner, _ = ad.script_filter(p)
    assert [type(s).__name__ for s in runner.alwayson_scripts] == ["Script"]
    assert runner.alwayson_scripts[0].filename.endswith("soft_inpainting.py")
    assert scripts.scripts_txt2img is webui.txt2img_runner


def test_the_mask_blur_read_is_the_narrower_of_the_hosts_two() -> None:
    from types import SimpleNamespace

    assert inner_passes.mask_blur(SimpleNamespace(mask_blur_x=32, mask_blur_y=4, mask_blur=None)) == 4
    assert inner_passes.mask_blur(SimpleNamespace(mask_blur=8)) == 8
    assert inner_passes.mask_blur(SimpleNamespace()) is None
    outer = SimpleNamespace()
    inner_passes.begin_job(outer)
    narrow = SimpleNamespace(mask_blur=4, _ad_inner=True)
    assert "ad_mask_blur" in inner_passes.blur_note(narrow, outer)
    assert inner_passes.blur_note(narrow, outer) is None  # once per outer job
    other = SimpleNamespace()
    inner_passes.begin_job(other)
    assert "extension that runs it" in inner_passes.blur_note(SimpleNamespace(mask_blur=2), other)


def test_an_inner_pass_on_a_flow_model_reports_its_noise_level_entries(monkeypatch) -> None:
    """Every entry the inner pass wrote reaches the picture's infotext, the composite's included
    (the per-channel distance of 16-channel latents is decided after sampling)."""
    webui = _webui(monkeypatch)
    _, processed = _txt2img(webui, [True], {"ad_mask_blur": 16}, model=FakeFlowModel())
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    assert params[USED_IN] == "ADetailer"
    assert params[FLOW_INFOTEXT_KEY] == "True"
    assert params[CHANNELS_INFOTEXT_KEY] == "True"
