"""Loads the node pack into the ComfyUI stand-in (``tests/comfy_host``) the way ComfyUI does, runs
nodes the way its executor does (prompt validation first), and samples the way ``common_ksampler``
does. ``load_pack("0.3.40")`` gives the pre-V3 host."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
COMFY_HOST = Path(__file__).resolve().parent / "comfy_host"
if str(COMFY_HOST) not in sys.path:
    sys.path.insert(0, str(COMFY_HOST))

import comfy  # noqa: E402
from comfy import model_base, model_patcher, model_sampling, samplers  # noqa: E402

__all__ = ["model_sampling", "samplers"]  # re-exported: tests import the stand-in through this module


def load_pack(version: str = "0.3.64") -> dict[str, type]:
    """Import the repository's root ``__init__.py`` as ComfyUI's ``load_custom_node`` does (a module
    named after the folder's path), and return its node classes by node id (V1 mappings first)."""
    comfy.set_host_version(version)
    for name in [n for n in sys.modules if n.startswith("comfy_api")]:
        del sys.modules[name]
    if version == "0.3.40":
        sys.modules["comfy_api"] = None  # not there before V3: importing it fails
    name = str(ROOT).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if getattr(module, "NODE_CLASS_MAPPINGS", None) is not None:
        return dict(module.NODE_CLASS_MAPPINGS)
    extension = asyncio.run(module.comfy_entrypoint())
    nodes = asyncio.run(extension.get_node_list())
    return {cls.GET_SCHEMA().node_id: cls for cls in nodes}


def is_v3(cls: type) -> bool:
    return hasattr(cls, "define_schema")


def validate(cls: type, inputs: dict[str, Any]) -> list[str]:
    """ComfyUI's ``validate_inputs`` for widget values: convert, min/max unless the node's own check
    takes ``**kwargs``, then the node's check. Returns the error messages (empty: valid)."""
    check = getattr(cls, "validate_inputs" if is_v3(cls) else "VALIDATE_INPUTS", None)
    has_check = check is not None and "validate_inputs" in cls.__dict__ if is_v3(cls) else check is not None
    types = cls.INPUT_TYPES()
    errors, values = [], dict(inputs)
    for name, info in {**types.get("required", {}), **types.get("optional", {})}.items():
        if name not in values:
            continue
        kind, extra = info[0], (info[1] if len(info) > 1 else {})
        if kind == "FLOAT":
            try:
                values[name] = float(values[name])
            except (TypeError, ValueError) as error:
                errors.append(f"Failed to convert an input value to a FLOAT value: {name}, {error}")
                continue
            if not has_check:
                if "min" in extra and values[name] < extra["min"]:
                    errors.append(f"Value {values[name]} smaller than min of {extra['min']}")
                if "max" in extra and values[name] > extra["max"]:
                    errors.append(f"Value {values[name]} bigger than max of {extra['max']}")
    if has_check and not errors:
        result = check(**values)
        if result is not True:
            errors.append(f"Custom validation failed for node: {result}")
    inputs.update(values)
    return errors


def run_node(cls: type, **inputs: Any) -> tuple[Any, ...]:
    """Execute one node with ``inputs`` as ComfyUI's executor does (V1 FUNCTION or V3 execute)."""
    if is_v3(cls):
        return tuple(cls.execute(**inputs).result)
    return tuple(getattr(cls(), cls.FUNCTION)(**inputs))


def sd_model(**kwargs: Any) -> model_patcher.ModelPatcher:
    return model_patcher.ModelPatcher(model_base.FakeBaseModel(**kwargs))


def ksample(
    model: model_patcher.ModelPatcher,
    latent: dict[str, Any],
    sigmas: torch.Tensor,
    noise: torch.Tensor,
    *,
    cfg: float = 1.0,
    guider_cls: type = samplers.CFGGuider,
    callback: Any = None,
) -> dict[str, Any]:
    """``common_ksampler`` → ``comfy.sample.sample`` → ``CFGGuider.sample`` with Euler."""
    guider = guider_cls(model)
    if guider_cls is samplers.Guider_Basic or issubclass(guider_cls, samplers.Guider_Basic):
        guider.set_conds(0.0)
    else:
        guider.set_conds(0.0, -0.05)
    guider.set_cfg(cfg)
    samples = guider.sample(
        noise,
        latent["samples"],
        samplers.ksampler("euler"),
        sigmas,
        denoise_mask=latent.get("noise_mask"),
        callback=callback,
        seed=1,
    )
    out = dict(latent)
    out["samples"] = samples
    return out


def karras(steps: int, denoise: float) -> torch.Tensor:
    """The WebUI stand-in's img2img sigmas for ``steps`` and ``denoise``."""
    from modules.sd_samplers import karras_sigmas

    t_enc = int(min(denoise, 0.999) * steps)
    return karras_sigmas(steps)[steps - t_enc - 1 :]
