"""The API face of the extension through the WebUI stand-in's FastAPI app (``tests/host/modules/api``):
the request check (422 before anything is queued), bodies passed on byte for byte, ``--api-auth``,
trailing arguments, the console for a user's bad value, and a WebUI older than 1.8.0."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from modules import errors, scripts
from webui_harness import disc_mask, photo, start_webui

from lib_soft_inpainting.settings import parse_script_args
from soft_inpainting_webui import request_check

IMG2IMG, TXT2IMG, SETTINGS_ROUTE = "/sdapi/v1/img2img", "/sdapi/v1/txt2img", "/soft-inpainting/v1/settings"
LINE_END = ": soft inpainting is off for this job"


def _b64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PICTURES = {"init_images": [_b64(photo((64, 64)))], "mask": _b64(disc_mask((64, 64)))}


def _body(entry_name: str | None = "soft inpainting", args=None, **extra) -> dict:
    body = {"prompt": "x", "steps": 4, "mask_blur": 8, **PICTURES, **extra}
    if entry_name is not None:
        body["alwayson_scripts"] = {entry_name: {"args": args}}
    return body


@pytest.fixture
def api():
    webui = start_webui()
    app, host_api = webui.start_api()
    return webui, TestClient(app), host_api


def _info(response) -> dict:
    return json.loads(response.json()["info"])["extra_generation_params"]


# --- rejected settings: 422 before anything is queued ------------------------------------------------


@pytest.mark.parametrize(("args", "setting", "value", "position", "allowed"), [
    ([True, "abc"], "mask_blend_power", "abc", 1, "a finite number from 0 to 8"),
    ([True, 1, 0.5, 4, 0, [1], 2], "composite_difference_threshold", [1], 5, "a finite number from 0 to 8"),
    (["maybe"], "enabled", "maybe", 0, "true or false"),
    ([True, 1, 0.5, 4, 0, 0.5, 2, 99, "ignored"], "timestep_as_noise_level", 99, 7, "true or false"),
    ([True, {"transition_contrast_boost": "lots"}], "inpaint_detail_preservation", "lots", 1,
     "a finite number from 1 to 32"),
])
def test_rejected_value_is_422_naming_setting_value_range_and_position(api, args, setting, value, position,
                                                                       allowed, capsys) -> None:
    _, client, host_api = api
    response = client.post(IMG2IMG, json=_body(args=args))
    assert response.status_code == 422
    body = response.json()
    assert (body["setting"], body["position"], body["allowed"]) == (setting, position, allowed)
    assert body["value"] == value
    assert body["entry"] == "soft inpainting" and body["script"] == "Soft Inpainting"
    assert setting in body["detail"] or "Soft inpainting" in body["detail"]
    assert host_api.jobs_started == 0, "nothing was queued or sampled"
    assert errors.reported == []
    assert "HTTP 422" in capsys.readouterr().out


def test_a_rejected_flag_is_named_by_its_label_too(api) -> None:
    """The 8th item's message names the control a person sees, not just the python name."""
    _, client, _ = api
    response = client.post(IMG2IMG, json=_body(args=[True, 1, 0.5, 4, 0, 0.5, 2, 99]))
    assert response.status_code == 422
    assert response.json()["detail"].count("DDIM/PLMS/UniPC") == 1


def test_named_form_names_the_key_used(api) -> None:
    _, client, _ = api
    body = client.post(IMG2IMG, json=_body(args=[True, {"Difference threshold": "x"}])).json()
    assert body["key"] == "Difference threshold" and body["setting"] == "composite_difference_threshold"


@pytest.mark.parametrize("title", ["soft inpainting", "Soft Inpainting", "SOFT INPAINTING"])
@pytest.mark.parametrize("path", [IMG2IMG, TXT2IMG])
def test_any_capitalisation_on_both_routes(api, title, path) -> None:
    _, client, host_api = api
    response = client.post(path, json=_body(title, [True, 1, 0.5, 4, 0, 0.5, "abc"]))
    assert response.status_code == 422 and response.json()["position"] == 6
    assert host_api.jobs_started == 0


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_numbers_are_422_with_the_value_as_text(api, raw) -> None:
    _, client, host_api = api
    text = json.dumps(_body(args=[True, 1, 0.5, 4, 0, 0.5, 2])).replace("0.5, 2]", f"0.5, {raw}]")
    response = client.post(IMG2IMG, content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["position"] == 6 and response.json()["value"] in ("nan", "inf", "-inf")
    assert host_api.jobs_started == 0


@pytest.mark.parametrize("entry", [[True, 1], "on", 5])
def test_an_entry_that_is_not_an_object_is_rejected(api, entry) -> None:
    _, client, _ = api
    body = {**_body(None), "alwayson_scripts": {"Soft Inpainting": entry}}
    response = client.post(IMG2IMG, json=body)
    assert response.status_code == 422 and response.json()["setting"] == "args"


@pytest.mark.parametrize("args", ["true", 1, None, {"enabled": True}])
def test_args_that_are_not_a_list_are_rejected(api, args) -> None:
    _, client, _ = api
    response = client.post(IMG2IMG, json=_body(args=args))
    assert response.status_code == 422 and response.json()["setting"] == "args"


def test_a_held_queue_lock_does_not_delay_the_rejection(api) -> None:
    _, client, host_api = api
    result = {}
    host_api.queue_lock.acquire()
    try:
        worker = threading.Thread(target=lambda: result.setdefault(
            "status", client.post(IMG2IMG, json=_body(args=[True, "abc"])).status_code))
        worker.start()
        worker.join(timeout=20)
        assert result.get("status") == 422
    finally:
        host_api.queue_lock.release()
    worker.join()


# --- accepted requests: on to the host unchanged ------------------------------------------------------


def test_accepted_and_clamped_requests_run_with_soft_inpainting(api) -> None:
    _, client, host_api = api
    response = client.post(IMG2IMG, json=_body("Soft Inpainting", [True, 12, 0.5, 4, 0, 0.5, 2]))
    assert response.status_code == 200 and host_api.jobs_started == 1
    info = _info(response)
    assert info["Soft inpainting enabled"] is True and info["Soft inpainting schedule bias"] == 8
    assert "clamped" in info["Soft inpainting note"]


def test_requests_without_our_entry_are_untouched(api) -> None:
    _, client, host_api = api
    response = client.post(IMG2IMG, json=_body(None))
    assert response.status_code == 200 and host_api.jobs_started == 1
    assert "Soft inpainting enabled" not in _info(response)


def _recording_app():
    seen: list[bytes] = []

    async def inner(scope, receive, send):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return seen, request_check.RequestCheck(inner, title="Soft Inpainting", host_app=FastAPI(),
                                            log=lambda _line: None)


@pytest.mark.parametrize("text", [
    b'{"prompt": "caf\\u00e9",   "alwayson_scripts": {"ADetailer": {"args": ["x"]}}}',
    b'{"alwayson_scripts":{"soft inpainting":{"args":[true,12,-1,0.5,2]}},"seed":  -1 }',
    b'{"alwayson_scripts": {"Soft Inpainting": {"args": [true, {"schedule_bias": "0.2"}]}}}',
    b'{"alwayson_scripts": {"soft inpainting": {}}, "x": 1.000000000000000000001}',
    b'  {"alwayson_scripts": {"SOFT inpainting": {"args": [true, null, 1]}}}\r\n\t ',
    b"not json at all",
    b"",
])
@pytest.mark.parametrize("path", [IMG2IMG, TXT2IMG, "/sdapi/v1/other"])
def test_passed_on_bodies_are_the_same_bytes(text, path) -> None:
    seen, app = _recording_app()
    response = TestClient(app).post(path, content=text, headers={"content-type": "application/json"})
    assert response.status_code == 200 and seen == [text]


def _drive(app, messages):
    """Run one POST through ``app`` with the given receive messages; what it sent back."""
    queue, sent = list(messages), []

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": IMG2IMG, "root_path": "", "headers": [],
             "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_body_in_chunks_is_passed_on_whole_and_a_disconnect_answers_nothing() -> None:
    seen, app = _recording_app()
    text = json.dumps(_body(args=[True, 1])).encode()
    chunks = [text[i:i + 1000] for i in range(0, len(text), 1000)]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    assert len(messages) > 2 and _drive(app, messages)[0]["status"] == 200 and seen == [text]
    seen.clear()
    assert _drive(app, [*messages[:2], {"type": "http.disconnect"}]) == [] and seen == []


def test_a_fault_in_the_check_passes_the_request_on(monkeypatch, capsys) -> None:
    seen, app = _recording_app()

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the check")

    monkeypatch.setattr(request_check, "check_request", broken)
    text = json.dumps(_body(args=[True, "abc"])).encode()
    response = TestClient(app).post(IMG2IMG, content=text, headers={"content-type": "application/json"})
    assert response.status_code == 200 and seen == [text]
    assert "bug in the check" in capsys.readouterr().err


# --- trailing arguments -------------------------------------------------------------------------------


def test_items_after_the_eighth_are_ignored_with_one_line(api, capsys) -> None:
    _, client, host_api = api
    response = client.post(IMG2IMG, json=_body(args=[True, 1, 0.5, 4, 0, 0.5, 2, None, "x", 7]))
    assert response.status_code == 200 and host_api.jobs_started == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "ignored" in line]
    assert lines == ["[Soft Inpainting] API request: 2 item(s) after the 8 the extension defines are ignored"]
    assert parse_script_args([True, 1, 0.5, 4, 0, 0.5, 2, None, "x", 7]).ignored == 2
    assert parse_script_args([True, 1, 0.5, 4, 0, 0.5, 2, True]).ignored == 0


# --- the console: one line for a user's mistake, tracebacks for real faults ---------------------------


def test_ui_bad_value_is_one_line_no_traceback_and_an_infotext_entry(capsys) -> None:
    webui = start_webui()
    capsys.readouterr()  # the start-up lines (which per-step path) are not the job's
    p, _ = webui.run(script_args=webui.args(True, "abc"))
    assert errors.reported == []
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[Soft Inpainting] Schedule bias")
    assert lines[0].endswith(LINE_END) and "Traceback" not in lines[0]
    assert "Schedule bias" in p.extra_generation_params["Soft inpainting error"]


def test_a_real_fault_keeps_its_traceback(monkeypatch) -> None:
    webui = start_webui()

    def broken(p, args, outer=None):
        raise RuntimeError("a bug, not a user's mistake")

    monkeypatch.setattr(webui.extension, "_parse_with_overrides", broken)
    webui.run(script_args=webui.args(True))
    assert len(errors.reported) == 1
    message, detail = errors.reported[0]
    assert message.startswith("Error running process") and "Traceback" in detail and "a bug" in detail


# --- authentication -----------------------------------------------------------------------------------


@pytest.fixture
def auth_api():
    webui = start_webui(cmd_opts={"api_auth": "alice:secret,bob:pw"})
    app, host_api = webui.start_api()
    return TestClient(app), host_api


@pytest.mark.parametrize("auth", [None, ("alice", "wrong"), ("mallory", "secret")])
def test_without_valid_credentials_every_route_gives_the_hosts_401(auth_api, auth) -> None:
    client, host_api = auth_api
    host_401 = client.get("/sdapi/v1/progress", auth=auth)
    assert host_401.status_code == 401 and host_401.headers["www-authenticate"] == "Basic"
    for response in (client.get(SETTINGS_ROUTE, auth=auth),
                     client.post(IMG2IMG, json=_body(args=[True, "abc"]), auth=auth),
                     client.post(TXT2IMG, json=_body(args=[True, "abc"]), auth=auth),
                     client.post(IMG2IMG, json=_body(args=[True]), auth=auth)):
        assert response.status_code == 401
        assert response.json() == host_401.json()
        assert response.headers["www-authenticate"] == "Basic"
    assert host_api.jobs_started == 0


def test_with_credentials_the_check_and_the_route_answer(auth_api) -> None:
    client, host_api = auth_api
    assert client.get(SETTINGS_ROUTE, auth=("bob", "pw")).json()["title"] == "Soft Inpainting"
    response = client.post(IMG2IMG, json=_body(args=[True, "abc"]), auth=("alice", "secret"))
    assert response.status_code == 422 and response.json()["setting"] == "mask_blend_power"
    assert host_api.jobs_started == 0
    response = client.post(IMG2IMG, json=_body(args=[True]), auth=("alice", "secret"))
    assert response.status_code == 200 and host_api.jobs_started == 1


def test_api_auth_without_the_host_api_serves_no_settings_route(capsys) -> None:
    start_webui(cmd_opts={"api_auth": "alice:secret"})
    from modules import script_callbacks

    app = FastAPI()
    for callback in script_callbacks.callbacks_app_started:
        callback(None, app)
    assert TestClient(app).get(SETTINGS_ROUTE).status_code == 404
    assert "is not served" in capsys.readouterr().out


def test_the_check_is_installed_once(api) -> None:
    _webui, client, _ = api
    from modules import script_callbacks

    app = client.app
    for callback in script_callbacks.callbacks_app_started:
        callback(None, app)
    assert sum(m.cls is request_check.RequestCheck for m in app.user_middleware) == 1


# --- a WebUI older than 1.8.0 -------------------------------------------------------------------------


def test_older_webui_is_told_once_and_left_alone(monkeypatch, capsys) -> None:
    for name in ("MaskBlendArgs", "PostSampleArgs", "PostProcessMaskOverlayArgs"):
        monkeypatch.delattr(scripts, name)
    monkeypatch.delattr(scripts.Script, "on_mask_blend")
    webui = start_webui(with_xyz=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[Soft Inpainting]")]
    assert len(lines) == 1 and "1.8.0" in lines[0] and "MaskBlendArgs" in lines[0]
    assert not any(isinstance(s, webui.extension.Script) for s in webui.runner.alwayson_scripts)
    from modules import script_callbacks

    # No Settings-page section, X/Y/Z axes, per-step callbacks or routes: nothing is registered.
    for registry in (script_callbacks.callbacks_ui_settings, script_callbacks.callbacks_before_ui,
                     script_callbacks.callbacks_app_started, script_callbacks.callbacks_cfg_denoiser,
                     script_callbacks.callbacks_cfg_after_cfg):
        assert registry == []
    app = FastAPI()
    for callback in script_callbacks.callbacks_app_started:
        callback(None, app)
    assert TestClient(app).get(SETTINGS_ROUTE).status_code == 404 and app.user_middleware == []


def test_installed_after_the_app_has_served_requests() -> None:
    """The full UI starts serving before ``on_app_started``; Starlette has built its middleware
    stack by then and refuses ``add_middleware``."""
    from modules import script_callbacks
    from modules.api import api as host_api_module

    start_webui()
    app = FastAPI()
    host_api = host_api_module.Api(app, threading.Lock())
    client = TestClient(app)
    assert client.get("/sdapi/v1/progress").status_code == 200
    for callback in script_callbacks.callbacks_app_started:
        callback(None, app)
    assert client.post(IMG2IMG, json=_body(args=[True, "abc"])).status_code == 422
    assert client.get(SETTINGS_ROUTE).status_code == 200 and host_api.jobs_started == 0
