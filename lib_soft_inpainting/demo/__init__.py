"""The demo: both stages of soft inpainting on a bundled photo, with no download and no weights.

The model is :class:`~.patch_posterior.PatchPosteriorDenoiser`, the closed-form,
local and equivariant denoiser that Kamb & Ganguli (2024) show trained convolutional U-Nets
reproduce: every pixel is the posterior mean of the centre of a training patch given the noisy
patch around it. Its patches come from the photo itself *with the eye to inpaint left out*, and
from the photo's mirror image around the cat's other eye. Asked to inpaint the left eye, it can
only paint what it knows — a mirrored right eye — while at low noise it keeps whatever already
fits its neighbourhood, as a trained model does: ordinary inpainting still leaves a seam at the
hard mask's edge; soft inpainting leaves none at the edge of the mask's support.

The "latent space" is the picture in [−1, 1] folded into 2×2 blocks (12 channels at half
resolution, scaled to unit-ish lengths), so decoding is exact and every difference between the
results comes from the inpainting. Both runs use the same seed, sampler (Euler over a Karras
schedule, the WebUI's hook order) and mask:

- hard: the WebUI's ordinary inpainting — latent mask rounded to 0/1, a hard blend every step
  and after sampling, then the original pasted back through the (doubled) mask;
- soft: soft inpainting — grey latent mask, stage 1 every step, stage 2 after decoding.

The panel shows original | mask | hard-mask inpaint | soft inpaint | adaptive mask (stage 2's
compositing mask, white = generated pixels shown). The seam measure is the mean gradient energy
of the change (result − original) on the mask's transition band, where a seam shows as a sudden
step; the original photo's own gradient energy there is printed for scale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter

from ..integrations.sampling import img2img_sigmas, sample_euler
from ..integrations.workflow import HardBlend, SoftBlend, hard_composite, latent_nmask, soft_composite
from ..settings import SoftInpaintingSettings
from .data import load_photo
from .patch_posterior import PatchPosteriorDenoiser

__all__ = ["BlockCodec", "DemoResult", "DemoScene", "build_scene", "run_demo", "seam_energy"]

SIZE = 160
PHOTO_BOX = (90, 40, 90 + SIZE, 40 + SIZE)  # the left eye of the bundled photo
HOLE = (40, 40, 120, 110)  # ellipse over that eye, in demo-photo pixels
MASK_FEATHER = 8.0  # Gaussian blur radius that makes the mask soft
OTHER_EYE = (135, 135)  # the right eye in mirrored-photo pixels
EYE_IN_PHOTO = (80, 75)
# The noise levels of Stable Diffusion's schedule, so stage 1's mask exponents behave as there.
SIGMA_MIN, SIGMA_MAX = 0.0292, 14.6146
PANEL_LABELS = ("original", "mask", "hard-mask inpaint", "soft inpaint", "adaptive mask")


@dataclass(frozen=True)
class BlockCodec:
    """A lossless stand-in for a VAE: pixels in [−1, 1] folded into ``factor²`` blocks, scaled.

    With factor 2 and scale 0.5 a latent pixel is a 12-vector of length about 1–2, like Stable
    Diffusion's 4-channel latents, so the difference threshold means what it means there.
    """

    factor: int = 2
    scale: float = 0.5

    def encode(self, image: Image.Image) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
        x = x.permute(2, 0, 1)[None]
        return F.pixel_unshuffle((2 * x - 1) * self.scale, self.factor)

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        x = F.pixel_shuffle(latents.float(), self.factor) / self.scale
        x = ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(np.rint(item * 255).astype(np.uint8)) for item in x]


@dataclass(frozen=True)
class DemoScene:
    """The photo to inpaint, its soft mask, and the model's training set (as latents).

    ``excluded`` (``[N, h, w]`` bool) marks latent pixels that are not training data: the eye
    to inpaint, in the photo's own view.
    """

    photo: Image.Image
    mask: Image.Image
    items: torch.Tensor
    excluded: torch.Tensor


def soft_mask(size: int = SIZE, hole: tuple[int, int, int, int] = HOLE,
              feather: float = MASK_FEATHER) -> Image.Image:
    """A white ellipse on black, blurred: grey levels are the opacity of the new content."""
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse(hole, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(feather))


def training_views(photo: Image.Image, size: int = SIZE) -> list[Image.Image]:
    """The demo crop itself, and the mirrored photo with the other eye where the inpainted eye is."""
    mirrored = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x0, y0 = OTHER_EYE[0] - EYE_IN_PHOTO[0], OTHER_EYE[1] - EYE_IN_PHOTO[1]
    return [photo.crop(PHOTO_BOX), mirrored.crop((x0, y0, x0 + size, y0 + size))]


def build_scene(codec: BlockCodec = BlockCodec()) -> DemoScene:
    bundled = load_photo()
    views = training_views(bundled)
    items = torch.cat([codec.encode(view) for view in views])
    hole = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(hole).ellipse(HOLE, fill=255)
    small = (items.shape[-1], items.shape[-2])
    eye = torch.from_numpy(np.asarray(hole.resize(small, resample=Image.Resampling.BOX)) > 0)
    excluded = torch.zeros(items.shape[0], *eye.shape, dtype=torch.bool)
    excluded[0] = eye
    return DemoScene(photo=views[0], mask=soft_mask(), items=items, excluded=excluded)


def seam_energy(result: Image.Image, original: Image.Image, mask: Image.Image) -> float:
    """Mean squared gradient of ``result − original`` over the mask's transition band.

    The band is where the mask is neither black nor white. A seam — the change switching on
    abruptly — gives large gradients of the change there; a smooth transition gives small ones.
    Pixel values in [0, 1], squared gradients summed over the RGB channels.
    """
    change = (np.asarray(result.convert("RGB"), dtype=np.float64)
              - np.asarray(original.convert("RGB"), dtype=np.float64)) / 255.0
    return _band_mean(_gradient_energy(change), mask)


def photo_energy(original: Image.Image, mask: Image.Image) -> float:
    """The original photo's own mean squared gradient on the same band, for scale."""
    return _band_mean(_gradient_energy(np.asarray(original.convert("RGB"), dtype=np.float64) / 255.0), mask)


def _gradient_energy(values: np.ndarray) -> np.ndarray:
    gx = np.diff(values, axis=1)[:-1]
    gy = np.diff(values, axis=0)[:, :-1]
    return (gx ** 2 + gy ** 2).sum(axis=-1)


def _band_mean(energy: np.ndarray, mask: Image.Image) -> float:
    grey = np.asarray(mask.convert("L"))[:-1, :-1]
    band = (grey > 0) & (grey < 255)
    return float(energy[band].mean())


@dataclass
class DemoResult:
    """What the demo made and measured."""

    panel_path: Path
    hard: Image.Image
    soft: Image.Image
    adaptive_mask: Image.Image
    seam_hard: float
    seam_soft: float
    photo_energy: float
    seconds: float
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class _Sampled:
    """One sampling run and what stage 2 needs from it."""

    init: torch.Tensor
    nmask: torch.Tensor
    samples: torch.Tensor
    decoded: list[Image.Image]


def _sample(scene: DemoScene, codec: BlockCodec, settings: SoftInpaintingSettings | None, steps: int,
            strength: float, seed: int, progress: Callable[[int, int], None] | None) -> _Sampled:
    """Stage 1: soft when ``settings`` is given, the host's hard inpainting otherwise."""
    init = codec.encode(scene.photo)
    channels, height, width = init.shape[1:]
    nmask = latent_nmask(scene.mask, width, height, channels, round_mask=settings is None)
    blend = HardBlend(init, nmask) if settings is None else SoftBlend(settings, init, nmask)
    # only the mask's support is ever shown: elsewhere the blend puts the original back
    denoiser = PatchPosteriorDenoiser(scene.items, excluded=scene.excluded, active=nmask[0] > 0)
    sigmas = img2img_sigmas(steps, strength, SIGMA_MIN, SIGMA_MAX)
    noise = torch.randn(init.shape, generator=torch.Generator().manual_seed(seed))
    samples = sample_euler(denoiser, init + noise * float(sigmas[0]), sigmas, blend, progress)
    return _Sampled(init, nmask, samples, codec.decode(samples))


def _composite(scene: DemoScene, settings: SoftInpaintingSettings | None, run: _Sampled
               ) -> tuple[Image.Image, Image.Image]:
    """Stage 2 (or the host's hard paste-back): the result and its compositing mask."""
    if settings is None:
        made = hard_composite(run.decoded, scene.photo, scene.mask)
    else:
        made = soft_composite(settings, run.nmask, run.init, run.samples, run.decoded, scene.photo)
    return made.images[0], made.masks[0]


def _inpaint(scene: DemoScene, codec: BlockCodec, settings: SoftInpaintingSettings | None, steps: int,
             strength: float, seed: int, progress: Callable[[int, int], None] | None
             ) -> tuple[Image.Image, Image.Image]:
    """One inpainting run: soft when ``settings`` is given, the host's hard inpainting otherwise."""
    return _composite(scene, settings, _sample(scene, codec, settings, steps, strength, seed, progress))


def make_panel(pictures: list[Image.Image], labels: tuple[str, ...] = PANEL_LABELS) -> Image.Image:
    """Pictures side by side with a caption strip under each."""
    width, height = pictures[0].size
    strip = 16
    panel = Image.new("RGB", (width * len(pictures), height + strip), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for i, (picture, label) in enumerate(zip(pictures, labels, strict=True)):
        panel.paste(picture.convert("RGB"), (i * width, 0))
        draw.text((i * width + 4, height + 2), label, fill=(0, 0, 0))
    return panel


def run_demo(out_dir: Path | str, settings: SoftInpaintingSettings | None = None, steps: int = 20,
             strength: float = 0.9, seed: int = 1,
             progress: Callable[[str, int, int], None] | None = None) -> DemoResult:
    """Run hard and soft inpainting on the bundled photo and write the panel (and its parts)."""
    started = time.perf_counter()
    settings = settings or SoftInpaintingSettings()
    codec = BlockCodec()
    scene = build_scene(codec)

    def report(label: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(label, done, total))

    hard, _ = _inpaint(scene, codec, None, steps, strength, seed, report("hard"))
    soft, adaptive = _inpaint(scene, codec, settings, steps, strength, seed, report("soft"))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    panel_path = out / "soft_inpainting_demo.png"
    make_panel([scene.photo, scene.mask, hard, soft, adaptive]).save(panel_path)
    files = [panel_path]
    for name, picture in (("original", scene.photo), ("mask", scene.mask), ("hard", hard), ("soft", soft),
                          ("adaptive_mask", adaptive)):
        path = out / f"demo_{name}.png"
        picture.save(path)
        files.append(path)
    return DemoResult(panel_path=panel_path, hard=hard, soft=soft, adaptive_mask=adaptive,
                      seam_hard=seam_energy(hard, scene.photo, scene.mask),
                      seam_soft=seam_energy(soft, scene.photo, scene.mask),
                      photo_energy=photo_energy(scene.photo, scene.mask),
                      seconds=time.perf_counter() - started, files=files)
