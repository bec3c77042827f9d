"""What the diffusers adapter tests share: a gradient photo, a blurred disc, a recording blend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from lib_soft_inpainting.integrations.workflow import SoftBlend

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


@dataclass
class RecordingBlend(SoftBlend):
    """The real stage-1 blend, noting the noise level of every call; the latest instance is ``last``
    (the ``recording`` fixture puts it in the adapter's place)."""

    calls: list[float] = field(default_factory=list)
    last: ClassVar[RecordingBlend | None] = None

    def __post_init__(self) -> None:
        RecordingBlend.last = self

    def __call__(self, current: torch.Tensor, sigma) -> torch.Tensor:
        self.calls.append(float(sigma))
        return super().__call__(current, sigma)
