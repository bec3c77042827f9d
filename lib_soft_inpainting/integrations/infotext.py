"""Generation parameters in the WebUI's infotext format, stored where the WebUI's PNG Info reads them.

PNG: the ``parameters`` text chunk. JPEG and WebP: the EXIF ``UserComment`` tag, in the EXIF
"unicode" encoding (an ``UNICODE\\0`` prefix, then UTF-16 big-endian), as the WebUI writes it with
piexif and reads it back in ``read_info_from_image``; written here with Pillow's own EXIF support.
The WebUI's PNG Info tab and its paste-back read this text; so do our own paste-back readers
(``settings.settings_from_infotext``). Layout: the prompt, an optional ``Negative prompt:`` line,
then ``Key: value`` pairs joined by ``", "``; values holding a comma, colon or newline are written
as JSON strings, as the WebUI quotes them (:func:`parse_infotext` reads them back).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

__all__ = [
    "PICTURE_FORMATS",
    "Infotext",
    "exif_user_comment",
    "format_infotext",
    "parse_infotext",
    "picture_format",
    "quote",
    "read_infotext",
    "read_png_infotext",
    "save_png_with_infotext",
    "save_with_infotext",
    "unquote",
]

INFOTEXT_CHUNK = "parameters"
# File extensions and the Pillow format written for them (the WebUI's choices of format).
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
JPEG_QUALITY = 90  # also WebP's; the WebUI's own default is 80
_EXIF_IFD = 0x8769  # the pointer from the first IFD to the Exif IFD
_USER_COMMENT = 0x9286  # UserComment, in the Exif IFD
_UNICODE_PREFIX = b"UNICODE\0"  # EXIF's character code for UTF-16 (piexif's "unicode"); big-endian
_LONG, _UNDEFINED = 4, 7  # TIFF field types
_IFD_SIZE = 2 + 12 + 4  # an IFD of one entry: the count, the entry, the next IFD's offset
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


def picture_format(path: Path | str) -> str:
    """The Pillow format for a file name's extension; a ValueError names the allowed ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise ValueError(f"cannot write {Path(path).name}: the file name must end in "
                         f"{', '.join(PICTURE_FORMATS)} (got {suffix or 'no extension'})")
    return PICTURE_FORMATS[suffix]


def save_png_with_infotext(image: Image.Image, path: Path | str, infotext: str) -> None:
    """Write ``image`` as PNG with ``infotext`` in the ``parameters`` text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(INFOTEXT_CHUNK, infotext)
    image.save(path, format="PNG", pnginfo=info)


def save_with_infotext(image: Image.Image, path: Path | str, infotext: str) -> None:
    """Write ``image`` in the format its extension names (PNG, JPEG, WebP), ``infotext`` included.

    PNG keeps it in the ``parameters`` chunk; JPEG and WebP in the EXIF UserComment (the picture
    is saved as RGB there, as the WebUI saves it).
    """
    kind = picture_format(path)
    if kind == "PNG":
        save_png_with_infotext(image, path, infotext)
        return
    image.convert("RGB").save(path, format=kind, quality=JPEG_QUALITY, exif=exif_user_comment(infotext))


def exif_user_comment(text: str) -> bytes:
    """EXIF data holding only ``text`` as the Exif IFD's UserComment, in the "unicode" encoding.

    Written by hand because the tag must have the type UNDEFINED, as piexif writes it and the
    WebUI's reader expects it (Pillow's ``Image.Exif`` would store the bytes as type BYTE, which
    piexif reads back as a tuple of numbers). Little-endian TIFF: the header, the first IFD with
    one entry (the Exif IFD's offset), the Exif IFD with one entry, then the comment.
    """
    comment = _UNICODE_PREFIX + text.encode("utf-16-be")
    exif_ifd = 8 + _IFD_SIZE
    tiff = (b"II" + struct.pack("<HI", 42, 8)
            + struct.pack("<HHHIII", 1, _EXIF_IFD, _LONG, 1, exif_ifd, 0)
            + struct.pack("<HHHIII", 1, _USER_COMMENT, _UNDEFINED, len(comment), exif_ifd + _IFD_SIZE, 0)
            + comment)
    return b"Exif\0\0" + tiff


def read_infotext(path: Path | str) -> str | None:
    """The infotext of a PNG, JPEG or WebP written by :func:`save_with_infotext` (or the WebUI)."""
    with Image.open(path) as image:
        image.load()
        text = image.info.get(INFOTEXT_CHUNK)
        comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes) and comment.startswith(_UNICODE_PREFIX):
        return comment[len(_UNICODE_PREFIX):].decode("utf-16-be", errors="replace")
    return text


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
