"""``modules.api.api``: the WebUI's FastAPI routes that soft inpainting meets, as in v1.10.1.

- ``init_script_args``: defaults come from the components' values of a fresh ``ui()`` call; the
  request's ``args`` then overwrite positions from ``args_from``, at most ``args_to − args_from`` of
  them; the script is found by its title, case-insensitively, first match wins.
- ``Api(app, queue_lock)``: ``POST /sdapi/v1/img2img`` and ``POST /sdapi/v1/txt2img`` with the
  host's route shapes (a pydantic request body, the script arguments built before the queue lock,
  the job run under it); with ``--api-auth user:pass[,user2:pass2]`` every route gets
  ``Depends(self.auth)`` (HTTP basic, 401 with ``WWW-Authenticate: Basic``); ``api_middleware``
  renders exceptions as ``{"error", "detail", "body", "errors"}`` like the host.
- ``POST /sdapi/v1/txt2img`` runs a txt2img job (``processing.StableDiffusionProcessingTxt2Img``)
  with the txt2img runner's scripts, as the host does.
"""

from __future__ import annotations

import base64
import io
import json
from secrets import compare_digest
from threading import Lock
from typing import Any

import gradio as gr
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image
from pydantic import BaseModel

from modules import processing, scripts, shared


def script_name_to_index(name: str, scripts: list[Any]) -> int:
    try:
        return [script.title().lower() for script in scripts].index(name.lower())
    except Exception as e:
        raise HTTPException(status_code=422, detail=f"Script '{name}' not found") from e


def init_default_script_args(script_runner: Any) -> list[Any]:
    last_arg_index = max([1, *(script.args_to for script in script_runner.scripts)])
    script_args: list[Any] = [None] * last_arg_index
    script_args[0] = 0
    with gr.Blocks():
        for script in script_runner.scripts:
            if script.ui(script.is_img2img):
                script_args[script.args_from:script.args_to] = [e.value for e in script.ui(script.is_img2img)]
    return script_args


def init_script_args(alwayson_scripts: dict[str, Any], default_script_args: list[Any], script_runner: Any
                     ) -> list[Any]:
    script_args = default_script_args.copy()
    for name, request in alwayson_scripts.items():
        script = script_runner.scripts[script_name_to_index(name, script_runner.scripts)]
        if "args" in request:
            args = request["args"]
            for idx in range(0, min(script.args_to - script.args_from, len(args))):
                script_args[script.args_from + idx] = args[idx]
    return script_args


class Txt2ImgRequest(BaseModel):
    prompt: str = ""
    width: int = 64
    height: int = 64
    steps: int = 8
    seed: int = 1
    denoising_strength: float = 0.75
    alwayson_scripts: dict[str, Any] = {}


class Img2ImgRequest(Txt2ImgRequest):
    init_images: list[str] | None = None
    mask: str | None = None
    mask_blur: int = 4
    inpainting_fill: int = 1


def decode_base64_to_image(encoding: str) -> Image.Image:
    if encoding.startswith("data:image/"):
        encoding = encoding.split(";")[1].split(",")[1]
    return Image.open(io.BytesIO(base64.b64decode(encoding)))


def encode_pil_to_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def info_json(processed: Any, p: Any) -> str:
    """``Processed.js()``: the job's infotexts and entries; a value JSON cannot hold (a callable entry)
    becomes null, as the host's ``json.dumps(…, default=lambda o: None)`` makes it."""
    info = {"infotexts": processed.infotexts, "extra_generation_params": p.extra_generation_params}
    return json.dumps(info, default=lambda o: None)


def api_middleware(app: FastAPI) -> None:
    def handle_exception(request: Request, e: Exception) -> JSONResponse:
        err = {"error": type(e).__name__, "detail": vars(e).get("detail", ""),
               "body": vars(e).get("body", ""), "errors": str(e)}
        return JSONResponse(status_code=vars(e).get("status_code", 500), content=jsonable_encoder(err),
                            headers=vars(e).get("headers"))

    @app.exception_handler(HTTPException)
    async def http_exception_handler(request: Request, e: HTTPException) -> JSONResponse:
        return handle_exception(request, e)


class Api:
    def __init__(self, app: FastAPI, queue_lock: Lock) -> None:
        if shared.cmd_opts.api_auth:
            self.credentials = {}
            for auth in shared.cmd_opts.api_auth.split(","):
                user, password = auth.split(":")
                self.credentials[user] = password
        self.app = app
        self.queue_lock = queue_lock
        self.jobs_started = 0  # not a host field: lets tests see whether anything was queued
        api_middleware(self.app)
        self.add_api_route("/sdapi/v1/txt2img", self.text2imgapi, methods=["POST"])
        self.add_api_route("/sdapi/v1/img2img", self.img2imgapi, methods=["POST"])
        self.add_api_route("/sdapi/v1/progress", self.progressapi, methods=["GET"])
        self.default_script_arg_txt2img = init_default_script_args(scripts.scripts_txt2img)
        self.default_script_arg_img2img = init_default_script_args(scripts.scripts_img2img)

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> Any:
        if shared.cmd_opts.api_auth:
            return self.app.add_api_route(path, endpoint, dependencies=[Depends(self.auth)], **kwargs)
        return self.app.add_api_route(path, endpoint, **kwargs)

    def auth(self, credentials: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:  # noqa: B008 (host's form)
        if credentials.username in self.credentials \
                and compare_digest(credentials.password, self.credentials[credentials.username]):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    def progressapi(self) -> dict[str, Any]:
        return {"progress": 0.0}

    def text2imgapi(self, txt2imgreq: Txt2ImgRequest) -> dict[str, Any]:
        script_runner = scripts.scripts_txt2img
        script_args = init_script_args(txt2imgreq.alwayson_scripts, self.default_script_arg_txt2img,
                                       script_runner)
        with self.queue_lock:
            self.jobs_started += 1
            p = processing.StableDiffusionProcessingTxt2Img(
                model=shared.sd_model, width=txt2imgreq.width, height=txt2imgreq.height,
                steps=txt2imgreq.steps, seed=txt2imgreq.seed, scripts=script_runner, script_args=script_args)
            p.is_api = True
            processed = processing.process_images(p)
        return {"images": [encode_pil_to_base64(i) for i in processed.images],
                "parameters": jsonable_encoder(txt2imgreq),
                "info": info_json(processed, p)}

    def img2imgapi(self, img2imgreq: Img2ImgRequest) -> dict[str, Any]:
        if img2imgreq.init_images is None:
            raise HTTPException(status_code=404, detail="Init image not found")
        mask = decode_base64_to_image(img2imgreq.mask) if img2imgreq.mask else None
        script_runner = scripts.scripts_img2img
        script_args = init_script_args(img2imgreq.alwayson_scripts, self.default_script_arg_img2img,
                                       script_runner)
        with self.queue_lock:
            self.jobs_started += 1
            p = processing.StableDiffusionProcessingImg2Img(
                [decode_base64_to_image(x).convert("RGB") for x in img2imgreq.init_images], mask,
                model=shared.sd_model, width=img2imgreq.width, height=img2imgreq.height,
                steps=img2imgreq.steps, seed=img2imgreq.seed, mask_blur=img2imgreq.mask_blur,
                denoising_strength=img2imgreq.denoising_strength, inpainting_fill=img2imgreq.inpainting_fill,
                scripts=script_runner, script_args=script_args)
            p.is_api = True
            processed = processing.process_images(p)
        return {"images": [encode_pil_to_base64(i) for i in processed.images],
                "parameters": jsonable_encoder(img2imgreq),
                "info": info_json(processed, p)}
