"""The nodes as V1 classes (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``), for ComfyUI before V3.

Built from ``specs.NODES``; nothing here imports ComfyUI.
"""

from __future__ import annotations

from typing import Any

from . import actions
from .specs import APPLY_NODE, CATEGORY, COMPOSITE_NODE, SETTINGS_NODE, InputSpec, NodeSpec


def input_options(spec: InputSpec) -> tuple[Any, ...]:
    """``(type, options)`` as V1 ``INPUT_TYPES`` lists an input (a combo's type is its choices)."""
    options = {key: value for key, value in (
        ("default", spec.default), ("min", spec.minimum), ("max", spec.maximum), ("step", spec.step),
        ("tooltip", spec.tooltip), ("display_name", spec.display_name)) if value is not None}
    kind = list(spec.choices) if spec.choices is not None else spec.type
    return kind, options


def input_types(node: NodeSpec) -> dict[str, dict[str, tuple[Any, ...]]]:
    types: dict[str, dict[str, tuple[Any, ...]]] = {"required": {}}
    for spec in node.inputs:
        types.setdefault("optional" if spec.optional else "required", {})[spec.id] = input_options(spec)
    return types


def _node_class(node: NodeSpec, function: str, run: Any) -> type:
    attrs: dict[str, Any] = {
        "__doc__": node.description,
        "DESCRIPTION": node.description,
        "CATEGORY": CATEGORY,
        "RETURN_TYPES": tuple(o.type for o in node.outputs),
        "RETURN_NAMES": tuple(o.display_name for o in node.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip or "" for o in node.outputs),
        "FUNCTION": function,
        "INPUT_TYPES": classmethod(lambda cls: input_types(node)),
        function: run,
    }
    if node.validated:
        # With ``**values`` ComfyUI hands every input to this check and skips its own min/max test.
        attrs["VALIDATE_INPUTS"] = classmethod(lambda cls, **values: actions.validate_settings(**values))
    return type(node.node_id, (), attrs)


def _settings(self: Any, preset: str, **values: Any) -> tuple[Any]:
    return (actions.make_settings(preset, **values),)


def _apply(self: Any, model: Any, settings: Any) -> tuple[Any]:
    return (actions.apply(model, settings),)


def _composite(self: Any, settings: Any, model: Any, original_image: Any, decoded_image: Any,
               original_latent: Any, sampled_latent: Any, mask: Any = None) -> tuple[Any, Any]:
    return actions.composite(settings, model, original_image, decoded_image, original_latent,
                             sampled_latent, mask)


SettingsNode = _node_class(SETTINGS_NODE, "make", _settings)
ApplyNode = _node_class(APPLY_NODE, "patch", _apply)
CompositeNode = _node_class(COMPOSITE_NODE, "composite", _composite)

NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (SettingsNode, ApplyNode, CompositeNode)}
NODE_DISPLAY_NAME_MAPPINGS = {node.node_id: node.display_name for node in (SETTINGS_NODE, APPLY_NODE,
                                                                            COMPOSITE_NODE)}
