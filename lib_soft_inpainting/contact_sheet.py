"""A contact sheet: several candidates of one job side by side, each labelled, to pick from."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["contact_sheet"]

GAP = 4
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def contact_sheet(pictures: Sequence[Image.Image], labels: Sequence[str]) -> Image.Image:
    """The pictures in a grid of ``ceil(√n)`` columns, a caption strip under each.

    All pictures are shown at the first one's size; the caption's height follows the pictures'
    (about 1/24 of their height, at least 12 pixels).
    """
    if not pictures or len(pictures) != len(labels):
        raise ValueError("a contact sheet needs one label per picture, and at least one picture")
    width, height = pictures[0].size
    columns = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    text_size = max(12, height // 24)
    strip = text_size + 2 * GAP
    sheet = Image.new("RGB", (columns * (width + GAP) + GAP, rows * (height + strip + GAP) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(text_size)
    for i, (picture, label) in enumerate(zip(pictures, labels, strict=True)):
        x = GAP + (i % columns) * (width + GAP)
        y = GAP + (i // columns) * (height + strip + GAP)
        sheet.paste(picture.convert("RGB").resize((width, height)), (x, y))
        draw.text((x + GAP, y + height + GAP), label, fill=INK, font=font)
    return sheet
