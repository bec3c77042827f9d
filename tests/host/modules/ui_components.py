"""``modules.ui_components.InputAccordion`` (WebUI 1.7+): a hidden checkbox that is the input, and
an accordion that follows it; ``with InputAccordion(...) as enabled`` yields the checkbox."""

from __future__ import annotations

from typing import Any

import gradio as gr


class InputAccordion(gr.Checkbox):
    global_index = 0

    def __init__(self, value: bool, **kwargs: Any) -> None:
        self.accordion_id = kwargs.get("elem_id")
        if self.accordion_id is None:
            self.accordion_id = f"input-accordion-{InputAccordion.global_index}"
            InputAccordion.global_index += 1
        super().__init__(value, **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False})
        self.accordion = gr.Accordion(**{**kwargs, "elem_id": self.accordion_id,
                                         "label": kwargs.get("label", "Accordion"),
                                         "elem_classes": ["input-accordion"], "open": value})

    def __enter__(self) -> InputAccordion:
        self.accordion.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.accordion.__exit__(*exc)

    def get_block_name(self) -> str:
        return "checkbox"


InputAccordionImpl = InputAccordion  # the class, under the name Forge ``main`` gives it
