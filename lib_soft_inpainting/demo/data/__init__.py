"""The demo's bundled photo.

``chelsea.png`` (451×300) is "Chelsea the cat" by Stefan van der Walt, released under CC0 (no
copyright restrictions), as shipped by scikit-image (``skimage.data.chelsea()``), re-encoded as PNG.
"""

from __future__ import annotations

from importlib import resources

from PIL import Image

__all__ = ["load_photo"]

PHOTO_NAME = "chelsea.png"


def load_photo() -> Image.Image:
    """The bundled photo as an RGB picture (read from the installed package, no download)."""
    with resources.files(__name__).joinpath(PHOTO_NAME).open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image.convert("RGB")
