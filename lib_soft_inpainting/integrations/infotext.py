"""Generation parameters in the WebUI's infotext format, stored in a PNG's ``parameters`` chunk.

The WebUI's PNG Info tab and its paste-back read this text; so do our own paste-back readers
(``settings.settings_from_infotext``). Layout: the prompt, an optional ``Negative prompt:`` line,
then ``Key: value`` pairs joined by ``", "``; values holding a comma, colon or newline are written
as JSON strings, as the WebUI quotes them (:func:`parse_infotext` reads them back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

__all__ = ["Infotext", "format_infotext", "parse_infotext", "quote", "read_png_infotext",
           "save_png_with_infotext", "unquote"]

INFOTEXT_CHUNK = "parameters"
NEGATIVE_PREFIX = "Negative prompt:"
# One ``Key: value`` entry: a key of word characters, spaces, '-' and '/', then either a JSON
# string (escapes allowed) or plain text up to the next comma.
_ENTRY = re.compile(r'\s*(\w[\w \-/]*):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# The WebUI takes the last line for the parameters only when it holds at least this many entries.
_MIN_ENTRIES = 3


def quote(value: Any) -> Any:
    """A value as it appears after ``Key: ``; JSON-quoted when it would break the list.

    As the WebUI quotes (a comma, colon or newline), and also text starting with a double quote,
    which a reader would otherwise take for a JSON string.
    """
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text and not text.startswith('"'):
        return value
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    """The inverse of :func:`quote` for text read back: JSON strings decoded, anything else as is."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


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


@dataclass
class Infotext:
    """An infotext read back: the prompt, the negative prompt and the ``Key: value`` entries (text)."""

    prompt: str
    negative_prompt: str
    params: dict[str, str] = field(default_factory=dict)


def parse_infotext(text: str) -> Infotext:
    """Split an infotext as the WebUI's paste-back does.

    The last line holds the entries when at least three ``Key: value`` pairs match there; a line
    starting ``Negative prompt:`` starts the negative prompt; the lines before it are the prompt.
    Values come back as text (JSON-quoted ones decoded); readers such as
    ``settings.settings_from_infotext`` parse the numbers.
    """
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    last = lines[-1] if lines else ""
    entries = _ENTRY.findall(last)
    if len(entries) >= _MIN_ENTRIES:
        params = {key.strip(): unquote(value.strip()) for key, value in entries}
        lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    for line in lines:
        if line.startswith(NEGATIVE_PREFIX) and not negative_lines:
            negative_lines.append(line[len(NEGATIVE_PREFIX):].strip())
        elif negative_lines:
            negative_lines.append(line)
        else:
            prompt_lines.append(line)
    return Infotext(prompt="\n".join(prompt_lines), negative_prompt="\n".join(negative_lines), params=params)


def read_png_infotext(path: Path | str) -> str | None:
    """The ``parameters`` text chunk of a PNG, or None when it has none."""
    with Image.open(path) as image:
        image.load()
        return image.info.get(INFOTEXT_CHUNK)
