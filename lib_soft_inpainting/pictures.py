"""Stage 2 as pictures: compositing masks and overlay images (SPEC §6 steps 8–9, static path).

The host's own picture helpers (its ``resize_image``, ``uncrop``, ``flatten``) are passed in as
plain callables so the WebUI's exact behaviour (and its upscaler settings) apply there, while
outside the WebUI the PIL equivalents below are used. Masks use the host's overlay polarity:
white = show the generated pixels, black = keep the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from .composite import REFERENCE_CHANNELS, latent_difference_masks, static_mask_values
from .settings import SoftInpaintingSettings

__all__ = [
    "CompositePictures",
    "PictureHelpers",
    "ResizeFn",
    "UncropFn",
    "adaptive_composite",
    "flatten",
    "mask_picture",
    "overlay_with_mask",
    "rebuild_overlay_images",
    "resize_image",
    "static_composite",
    "uncrop",
]

ResizeFn = Callable[[int, Image.Image, int, int], Image.Image]
UncropFn = Callable[[Image.Image, tuple[int, int], tuple[int, int, int, int]], Image.Image]
FlattenFn = Callable[[Image.Image, str], Image.Image]
PasteBox = tuple[int, int, int, int]

MASK_BLUR_RADIUS = 4

_LANCZOS = Image.Resampling.LANCZOS


def resize_image(resize_mode: int, im: Image.Image, width: int, height: int) -> Image.Image:
    """The WebUI's ``images.resize_image`` without an upscaler (Lanczos), for use outside it.

    0 = stretch, 1 = crop to fill, 2 = fit and fill the borders by stretching the edges;
    modes 1 and 2 return RGB pictures as the WebUI's does.
    """
    if resize_mode == 0:
        return im.resize((width, height), resample=_LANCZOS)
    ratio, src_ratio = width / height, im.width / im.height
    if resize_mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
    else:
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=_LANCZOS)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if resize_mode == 1:
        return res
    if ratio < src_ratio:
        fill = height // 2 - src_h // 2
        if fill > 0:
            res.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)),
                      box=(0, fill + src_h))
    elif ratio > src_ratio:
        fill = width // 2 - src_w // 2
        if fill > 0:
            res.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)),
                      box=(fill + src_w, 0))
    return res


def uncrop(image: Image.Image, dest_size: tuple[int, int], paste_loc: PasteBox) -> Image.Image:
    """Place ``image`` (resized to the box) at ``paste_loc`` on a transparent RGBA canvas."""
    x, y, w, h = paste_loc
    base = Image.new("RGBA", dest_size)
    base.paste(resize_image(1, image, w, h), (x, y))
    return base


def flatten(img: Image.Image, bgcolor: str) -> Image.Image:
    """Replace transparency with ``bgcolor``, returning an RGB picture."""
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert("RGB")


@dataclass(frozen=True)
class PictureHelpers:
    """The host's picture functions; defaults are the PIL equivalents above."""

    resize_image: ResizeFn = resize_image
    uncrop: UncropFn = uncrop
    flatten: FlattenFn = flatten


@dataclass
class CompositePictures:
    """Per image of the batch: the compositing mask and the overlay made with it."""

    masks: list[Image.Image]
    overlays: list[Image.Image]


def overlay_with_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The picture with alpha = 255 − mask, made the way the host makes its overlays.

    Pasting the premultiplied (``RGBa``) picture onto a blank ``RGBa`` canvas, then converting
    back, rounds exactly as the host's own overlays do; the rounding shows in the final pixels.
    """
    canvas = Image.new("RGBa", (image.width, image.height))
    canvas.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    return canvas.convert("RGBA")


def mask_picture(mask: np.ndarray, width: int, height: int, paste_to: PasteBox | None,
                 overlay_size: tuple[int, int], helpers: PictureHelpers = PictureHelpers()) -> Image.Image:
    """A latent-size uint8 mask as a full-size picture: resize (mode 2), grey, blur, uncrop."""
    picture = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="L")
    picture = helpers.resize_image(2, picture, width, height).convert("L")
    picture = picture.filter(ImageFilter.GaussianBlur(radius=MASK_BLUR_RADIUS))
    if paste_to is not None:
        picture = helpers.uncrop(picture, overlay_size, paste_to)
    return picture


def rebuild_overlay_images(init_images: Sequence[Image.Image], background: str, paste_to: PasteBox | None,
                           resize_mode: int, width: int, height: int,
                           helpers: PictureHelpers = PictureHelpers()) -> list[Image.Image]:
    """The un-holed originals to composite over: flattened, resized like the host, RGBA.

    Resize mode 3 ("latent upscale") stretches the init latents, not the picture, so upstream keeps
    the picture's own size and fails (a mask of the output's size cannot be pasted through); here
    a picture of another size is stretched to the output's size, as its latents were.
    """
    if not init_images:
        raise ValueError("soft inpainting: the job has no init images to composite over")
    overlays = []
    for img in init_images:
        image = helpers.flatten(img, background)
        if paste_to is None and resize_mode != 3:
            image = helpers.resize_image(resize_mode, image, width, height)
        elif paste_to is None and image.size != (width, height):
            image = helpers.resize_image(0, image, width, height)
        overlays.append(image.convert("RGBA"))
    return overlays


def _overlay_for(overlay_images: Sequence[Image.Image], index: int) -> Image.Image:
    """One init image serves the whole batch; several are matched by index."""
    return overlay_images[index] if index < len(overlay_images) else overlay_images[0]


def _pictures(masks: torch.Tensor, count: int, overlay_images: Sequence[Image.Image], width: int,
              height: int, paste_to: PasteBox | None, helpers: PictureHelpers) -> CompositePictures:
    """Turn ``uint8 [N, H, W]`` masks into ``count`` mask pictures and overlays (mask i or mask 0)."""
    arrays = masks.cpu().numpy()
    made: dict[tuple[int, tuple[int, int]], Image.Image] = {}
    result = CompositePictures([], [])
    for i in range(count):
        overlay = _overlay_for(overlay_images, i)
        m = i if i < len(arrays) else 0
        key = (m, overlay.size)
        if key not in made:
            made[key] = mask_picture(arrays[m], width, height, paste_to, overlay.size, helpers)
        result.masks.append(made[key])
        result.overlays.append(overlay_with_mask(overlay, made[key]))
    return result


def adaptive_composite(settings: SoftInpaintingSettings, nmask: torch.Tensor, latent_orig: torch.Tensor,
                       latent_processed: torch.Tensor, overlay_images: Sequence[Image.Image], width: int,
                       height: int, paste_to: PasteBox | None,
                       helpers: PictureHelpers = PictureHelpers(), *,
                       reference_channels: int | None = REFERENCE_CHANNELS) -> CompositePictures:
    """Masks and overlays from how much each region changed (SPEC §6, latents available).

    ``reference_channels``: see :func:`~.composite.latent_distance` (None: the plain channel norm).
    """
    masks = latent_difference_masks(settings, nmask, latent_orig, latent_processed,
                                    reference_channels=reference_channels)
    return _pictures(masks, masks.shape[0], overlay_images, width, height, paste_to, helpers)


def static_composite(settings: SoftInpaintingSettings, nmask: torch.Tensor,
                     overlay_images: Sequence[Image.Image], count: int, width: int, height: int,
                     paste_to: PasteBox | None,
                     helpers: PictureHelpers = PictureHelpers()) -> CompositePictures:
    """Masks and overlays from the painted mask alone, for samples that arrive already decoded."""
    masks = static_mask_values(settings, nmask)
    return _pictures(masks, count, overlay_images, width, height, paste_to, helpers)


def labelled_mask_preview(mask: Image.Image, label: str) -> Image.Image:
    """The compositing mask as an RGB picture with a caption band, for tuning by eye.

    White = generated pixels shown, black = original kept.
    """
    picture = mask.convert("L").convert("RGB")
    band = max(14, picture.height // 24)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, picture.width, band + 4), fill=(32, 32, 96))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return picture
