"""The nodes as V3 classes (``comfy_api.latest``: ``io.ComfyNode``, ``io.Schema``), built from
``specs.NODES``. ``comfy_api`` is imported only when :func:`node_classes` runs, inside ComfyUI."""

from __future__ import annotations

from typing import Any

from . import actions
from .specs import APPLY_NODE, CATEGORY, COMPOSITE_NODE, SETTINGS_NODE, InputSpec, NodeSpec


def _input(io: Any, spec: InputSpec) -> Any:
    common = {"display_name": spec.display_name, "optional": spec.optional, "tooltip": spec.tooltip}
    if spec.type == "FLOAT":
        return io.Float.Input(spec.id, default=spec.default, min=spec.minimum, max=spec.maximum,
                              step=spec.step, **common)
    if spec.type == "COMBO":
        return io.Combo.Input(spec.id, options=list(spec.choices), default=spec.default, **common)
    return _io_type(io, spec.type).Input(spec.id, **common)


def _io_type(io: Any, name: str) -> Any:
    builtin = {"MODEL": "Model", "IMAGE": "Image", "MASK": "Mask", "LATENT": "Latent"}
    return getattr(io, builtin[name]) if name in builtin else io.Custom(name)


def _schema(io: Any, node: NodeSpec) -> Any:
    return io.Schema(
        node_id=node.node_id, display_name=node.display_name, category=CATEGORY,
        description=node.description,
        inputs=[_input(io, spec) for spec in node.inputs],
        outputs=[_io_type(io, o.type).Output(o.id, display_name=o.display_name, tooltip=o.tooltip)
                 for o in node.outputs],
    )


def node_classes() -> list[type]:
    """The three ``io.ComfyNode`` classes."""
    from comfy_api.latest import io

    class SoftInpaintingSettings(io.ComfyNode):
        __doc__ = SETTINGS_NODE.description

        @classmethod
        def define_schema(cls) -> Any:
            return _schema(io, SETTINGS_NODE)

        @classmethod
        def validate_inputs(cls, **values: Any) -> bool | str:
            return actions.validate_settings(**values)

        @classmethod
        def execute(cls, preset: str, **values: Any) -> Any:
            return io.NodeOutput(actions.make_settings(preset, **values))

    class SoftInpaintingApply(io.ComfyNode):
        __doc__ = APPLY_NODE.description

        @classmethod
        def define_schema(cls) -> Any:
            return _schema(io, APPLY_NODE)

        @classmethod
        def execute(cls, model: Any, settings: Any) -> Any:
            return io.NodeOutput(actions.apply(model, settings))

    class SoftInpaintingComposite(io.ComfyNode):
        __doc__ = COMPOSITE_NODE.description

        @classmethod
        def define_schema(cls) -> Any:
            return _schema(io, COMPOSITE_NODE)

        @classmethod
        def execute(cls, settings: Any, model: Any, original_image: Any, decoded_image: Any,
                    original_latent: Any, sampled_latent: Any, mask: Any = None) -> Any:
            return io.NodeOutput(*actions.composite(settings, model, original_image, decoded_image,
                                                    original_latent, sampled_latent, mask))

    return [SoftInpaintingSettings, SoftInpaintingApply, SoftInpaintingComposite]


def v3_available() -> bool:
    """Whether this ComfyUI has the V3 node schema and its entry point."""
    try:
        from comfy_api.latest import ComfyExtension, io
    except ImportError:
        return False
    return ComfyExtension is not None and hasattr(io, "ComfyNode") and hasattr(io, "Schema")


async def comfy_entrypoint() -> Any:
    """ComfyUI's V3 entry point: an extension listing the three nodes."""
    from comfy_api.latest import ComfyExtension

    classes = node_classes()

    class SoftInpaintingExtension(ComfyExtension):
        async def get_node_list(self) -> list[type]:
            return classes

    return SoftInpaintingExtension()
