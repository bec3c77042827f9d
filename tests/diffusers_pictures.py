"""The picture and mask the diffusers adapter tests share: a gradient photo and a blurred disc."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 64


def gradient_picture(size: int = SIZE) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    return Image.fromarray(np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).astype(np.uint8))


def grey_mask(size: int = SIZE) -> Image.Image:
    """A blurred disc in the middle: white core, grey transition, black elsewhere."""
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((26, 26, 38, 38), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(2))


def far_from_mask(mask: Image.Image, distance: int) -> np.ndarray:
    """Pixels more than ``distance`` (Chebyshev) from every non-black mask pixel."""
    touched = np.asarray(mask) > 0
    grown = Image.fromarray(touched.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * distance + 1))
    return np.asarray(grown) == 0
