"""Generation parameters in the WebUI's infotext format, stored in a PNG's ``parameters`` chunk.

The WebUI's PNG Info tab and its paste-back read this text; so do our own paste-back readers
(``settings.settings_from_infotext``). Layout: the prompt, an optional ``Negative prompt:`` line,
then ``Key: value`` pairs joined by ``", "``; values holding a comma, colon or newline are written
as JSON strings, as the WebUI quotes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

__all__ = ["format_infotext", "quote", "save_png_with_infotext"]

INFOTEXT_CHUNK = "parameters"


def quote(value: Any) -> Any:
    """A value as it appears after ``Key: ``; JSON-quoted when it would break the list."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return value
    return json.dumps(text, ensure_ascii=False)


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, Any]) -> str:
    """``prompt[\\nNegative prompt: …]\\nKey: value, …``; entries whose value is None are left out."""
    pairs = ", ".join(f"{key}: {quote(value)}" for key, value in params.items() if value is not None)
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{pairs}".strip()


def save_png_with_infotext(image: Image.Image, path: Path | str, infotext: str) -> None:
    """Write ``image`` as PNG with ``infotext`` in the ``parameters`` text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(INFOTEXT_CHUNK, infotext)
    image.save(path, format="PNG", pnginfo=info)
