"""``comfy_api.latest._io``: the V3 schema types the pack uses, and the V1 view ComfyUI derives
from a schema (``INPUT_TYPES``: what prompt validation and the front end read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _Input:
    io_type = ""

    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        **options: Any,
    ) -> None:
        self.id, self.display_name, self.optional, self.tooltip = id, display_name, optional, tooltip
        self.options = {k: v for k, v in options.items() if v is not None}

    def as_v1(self) -> tuple[Any, dict[str, Any]]:
        extra = {
            k: v for k, v in (("display_name", self.display_name), ("tooltip", self.tooltip)) if v is not None
        }
        return self.io_type, {**self.options, **extra}


class _Output:
    io_type = ""

    def __init__(
        self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None
    ) -> None:
        self.id, self.display_name, self.tooltip = id, display_name, tooltip


def _type(name: str) -> type:
    return type(
        name,
        (),
        {
            "Input": type("Input", (_Input,), {"io_type": name}),
            "Output": type("Output", (_Output,), {"io_type": name}),
            "io_type": name,
        },
    )


Model, Image, Mask, Latent = _type("MODEL"), _type("IMAGE"), _type("MASK"), _type("LATENT")


def Custom(io_type: str) -> type:
    return _type(io_type)


class Float:
    class Input(_Input):
        io_type = "FLOAT"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            default: float | None = None,
            min: float | None = None,
            max: float | None = None,
            step: float | None = None,
            round: float | None = None,
        ) -> None:
            super().__init__(
                id, display_name, optional, tooltip, default=default, min=min, max=max, step=step, round=round
            )


class Combo:
    class Input(_Input):
        io_type = "COMBO"

        def __init__(
            self,
            id: str,
            options: list[str] | None = None,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            default: str | None = None,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, default=default)
            self.choices = list(options or [])

        def as_v1(self) -> tuple[Any, dict[str, Any]]:
            return self.choices, self.as_v1_options()

        def as_v1_options(self) -> dict[str, Any]:
            return super().as_v1()[1]


@dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    description: str = ""

    def validate(self) -> None:
        """As the host's ``Schema.validate``: ids unique among inputs, among outputs, and between them."""
        inputs, outputs = [i.id for i in self.inputs], [o.id for o in self.outputs]
        problems = []
        if len(set(inputs)) != len(inputs) or len(set(outputs)) != len(outputs):
            problems.append("Input and output ids must be unique")
        if set(inputs) & set(outputs):
            problems.append(
                f"Ids must be unique between inputs and outputs, but {set(inputs) & set(outputs)} are not."
            )
        if problems:
            raise ValueError("\n".join(problems))


class NodeOutput:
    def __init__(self, *args: Any) -> None:
        self.args = args

    @property
    def result(self) -> tuple[Any, ...]:
        return self.args


class ComfyNode:
    """V3 node base: classmethods ``define_schema`` and ``execute`` (keyword inputs)."""

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs: Any) -> bool | str:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.validate()
        return schema

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        types: dict[str, dict[str, Any]] = {"required": {}}
        for i in cls.GET_SCHEMA().inputs:
            types.setdefault("optional" if i.optional else "required", {})[i.id] = i.as_v1()
        return types
