"""The API's request check: a rejected soft-inpainting setting is an HTTP 422 before any job starts.

Inside a hook nothing can turn a request into an HTTP error (the host catches what a script raises,
SPEC §10), so the check sits in front of the host's ``/sdapi/v1/img2img`` and ``/sdapi/v1/txt2img``
routes as an ASGI middleware installed from ``on_app_started``. For those two paths it reads the
body once and looks for this extension's ``alwayson_scripts`` entry (any capitalisation of its
title). Without one, or when the policy accepts it (clamping is a note, not an error), the request
goes on to the host with the very bytes it came with. A rejected value is answered with 422 and a
JSON body naming the setting, the value, the allowed range and the position in ``args`` — but only
for a caller the host's own route would let in: the route's dependencies (the WebUI's ``--api-auth``
check) are run first, and a caller they refuse is passed on untouched to get the host's own 401.
The host's queue lock is taken inside its route handler, so a rejected request never waits for it.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lib_soft_inpainting.settings import ARGS_COUNT, SettingsError, SoftInpaintingSettings, parse_script_args

CHECKED_PATHS = ("/sdapi/v1/img2img", "/sdapi/v1/txt2img")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Rejection:
    """Why a request's soft-inpainting entry cannot be used: the 422 body, as a dict."""

    entry: str
    error: SettingsError

    def body(self, title: str) -> dict[str, Any]:
        e = self.error
        return {"error": "SettingsError", "detail": f"{title}: {e}", "script": title, "entry": self.entry,
                "setting": e.setting, "value": json_safe(e.value) if e.has_value else None,
                "allowed": e.allowed, "position": e.position, "key": e.key}


def json_safe(value: Any, limit: int = 200) -> Any:
    """``value`` itself if strict JSON carries it unchanged and short; otherwise its text (NaN,
    infinity, integers past what a JSON reader keeps exactly, long values)."""
    try:
        exact = not _has_big_int(value) and len(json.dumps(value, allow_nan=False)) <= limit
    except (TypeError, ValueError, RecursionError):
        exact = False
    if exact:
        return value
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _has_big_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) >= 2 ** 53
    if isinstance(value, list):
        return any(_has_big_int(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_big_int(v) for v in value.values())
    return False


def check_request(payload: Any, title: str, defaults: SoftInpaintingSettings | None = None,
                  log: Callable[[str], None] = print) -> Rejection | None:
    """The first rejected entry of ``payload`` for the script titled ``title``, or None.

    Sees what the script will see: the host copies at most ``ARGS_COUNT`` items of ``args`` into
    the script's positions and fills the rest with the UI's defaults (which are valid), so only
    those items are checked; further items are ignored, with one console line.
    """
    scripts = payload.get("alwayson_scripts") if isinstance(payload, Mapping) else None
    if not isinstance(scripts, Mapping):
        return None
    for name, entry in scripts.items():
        if not isinstance(name, str) or name.lower() != title.lower():
            continue
        if not isinstance(entry, Mapping):
            return Rejection(name, SettingsError(
                f'the entry must be an object such as {{"args": [true]}}; got {json.dumps(json_safe(entry))}',
                setting="args", value=entry, allowed='an object with "args"'))
        if "args" not in entry:
            continue
        args = entry["args"]
        if not isinstance(args, list):
            return Rejection(name, SettingsError(
                f"args must be a list such as [true, 1, 0.5, 4, 0, 0.5, 2]; got "
                f"{json.dumps(json_safe(args))}", setting="args", value=args, allowed="a list"))
        try:
            parse_script_args(args[:ARGS_COUNT], defaults=defaults)
        except SettingsError as error:
            return Rejection(name, error)
        extra = len(args) - ARGS_COUNT if not (len(args) > 1 and isinstance(args[1], Mapping)) else 0
        if extra > 0:
            log(f"[{title}] API request: {extra} item(s) after the {ARGS_COUNT} the extension defines "
                f"are ignored")
    return None


class RequestCheck:
    """ASGI middleware: :func:`check_request` on the two generation routes, before the host's handler.

    ``defaults`` gives the user's Settings-page defaults at request time; ``log`` prints a line.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, title: str,
                 host_app: Any, defaults: Callable[[], SoftInpaintingSettings | None] = lambda: None,
                 log: Callable[[str], None] = print) -> None:
        self.app, self.title, self.host_app, self.defaults, self.log = app, title, host_app, defaults, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or _route_path(scope) not in CHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        if body is None:
            return  # the client went away before sending its whole body: nothing to answer
        rejection = None
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None  # the host answers malformed JSON itself
        if payload is not None:
            try:
                rejection = check_request(payload, self.title, self.defaults(), self.log)
            except Exception:  # a fault of this check must not cost the caller the request
                self.log(f"[{self.title}] the API request check failed; the request goes on unchecked")
                traceback.print_exc()
        if rejection is not None and await _host_lets_in(self.host_app, scope, body):
            self.log(f"[{self.title}] API request rejected (HTTP 422): {rejection.error}")
            await _send_json(send, 422, rejection.body(self.title))
            return
        await self.app(scope, receive, send)


def install(app: Any, **options: Any) -> bool:
    """Add :class:`RequestCheck` to ``app`` (innermost, so the host's CORS and logging wrap it).

    Starlette builds its middleware stack on the first request and refuses ``add_middleware``
    afterwards; the WebUI itself resets ``middleware_stack`` to add its own after start-up, and so
    does this. Returns False when ``app`` is not a Starlette application (nothing installed).
    """
    user_middleware = getattr(app, "user_middleware", None)
    if not isinstance(user_middleware, list):
        return False
    from starlette.middleware import Middleware

    if any(getattr(m, "cls", None) is RequestCheck for m in user_middleware):
        return True  # once per app, even if on_app_started fires twice
    user_middleware.append(Middleware(RequestCheck, host_app=app, **options))
    app.middleware_stack = None  # rebuilt on the next request
    return True


def host_route(app: Any, path: str) -> Any:
    """The host's own POST route at ``path`` (a FastAPI ``APIRoute``), or None."""
    for route in getattr(app, "routes", None) or []:
        if getattr(route, "path", None) == path and "POST" in (getattr(route, "methods", None) or ()):
            return route
    return None


def route_dependencies(app: Any) -> list[Any]:
    """The dependencies the host puts on its own generation route (its ``--api-auth`` check)."""
    route = host_route(app, CHECKED_PATHS[0])
    return list(getattr(route, "dependencies", None) or [])


async def _host_lets_in(app: Any, scope: Scope, body: bytes) -> bool:
    """Whether the host's route dependencies accept this request, run by FastAPI itself.

    A throw-away FastAPI app with one route carrying exactly the host's dependencies (the WebUI's
    ``Depends(api.auth)``, whatever credentials store it reads) answers the same request; a 2xx
    means the dependencies passed. No dependencies: nothing to pass.
    """
    route = host_route(app, _route_path(scope))
    dependencies = list(getattr(route, "dependencies", None) or [])
    if not dependencies:
        return True
    from fastapi import FastAPI, Response

    def passed():  # no return annotation: old FastAPI evaluates it in this module's globals
        return Response(status_code=204)

    probe = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    probe.add_api_route(_route_path(scope), passed, methods=["POST"], dependencies=dependencies)
    status: list[int] = []

    async def record(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    probe_scope = {k: v for k, v in scope.items() if k not in ("app", "router", "route", "endpoint")}
    probe_scope["root_path"] = ""
    probe_scope["path"] = _route_path(scope)
    try:
        await probe(probe_scope, _once(body), record)
    except Exception:
        return False
    return bool(status) and 200 <= status[0] < 300


def _route_path(scope: Scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _once(body: bytes) -> Receive:
    """A ``receive`` for a body already read: the body, then a disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None if the client disconnected first), and a ``receive`` that
    hands it on unchanged, then defers."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _send_json(send: Send, status: int, content: dict[str, Any]) -> None:
    data = json.dumps(content, allow_nan=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
