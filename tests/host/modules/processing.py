"""``modules.processing``: an img2img inpaint job from ``before_process`` to the overlay paste, and
a txt2img job (with an optional hires fix pass).

``process_images`` follows the host's ``process_images`` and ``process_images_inner`` in the order
the extension sees: ``scripts.before_process`` → ``scripts.process`` → ``p.init`` (mask rounding,
blur, "only masked" crop, overlays, init latents, latent mask, inpainting conditioning) → per
batch (``p.iteration``): ``scripts.process_before_every_sampling`` → sampling with ``on_mask_blend``
every step and a final blend → ``scripts.post_sample`` → decode (unless ``already_decoded``) → per
image (``p.batch_index``): ``scripts.postprocess_image`` (where ADetailer runs its inner passes) →
``scripts.postprocess_maskoverlay`` → ``apply_overlay`` (skipped without an overlay) → the image's
infotext (``create_infotext``: list values indexed per image, callables called with its locals, as
the host has done since 1.8) → the host's mask outputs → ``scripts.postprocess``.
The only liberty: the mask blur uses PIL's Gaussian blur instead of OpenCV's (the extension never
sees the difference).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps

from . import images, scripts, sd_samplers, shared


def uncrop(image: Image.Image, dest_size: tuple[int, int], paste_loc: tuple[int, int, int, int]
           ) -> Image.Image:
    x, y, w, h = paste_loc
    base_image = Image.new("RGBA", dest_size)
    image = images.resize_image(1, image, w, h)
    base_image.paste(image, (x, y))
    return base_image


def apply_overlay(image: Image.Image, paste_loc: Any, overlay: Image.Image | None
                  ) -> tuple[Image.Image, Image.Image]:
    if overlay is None:
        return image, image.copy()
    if paste_loc is not None:
        image = uncrop(image, (overlay.width, overlay.height), paste_loc)
    original_denoised_image = image.copy()
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB"), original_denoised_image


def create_binary_mask(image: Image.Image, round: bool = True) -> Image.Image:
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        alpha = image.split()[-1].convert("L")
        return alpha.point(lambda x: 255 if x > 128 else 0) if round else alpha
    return image.convert("L")


def get_crop_region(mask: Image.Image, pad: int) -> tuple[int, int, int, int] | None:
    """The bounding box of the mask's non-zero pixels, padded, clipped to the picture."""
    box = mask.getbbox()
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.width), min(y2 + pad, mask.height)


def expand_crop_region(crop_region: tuple[int, int, int, int], processing_width: int, processing_height: int,
                       image_width: int, image_height: int) -> tuple[int, int, int, int]:
    """Grow the region to the processing aspect ratio, staying inside the picture."""
    x1, y1, x2, y2 = crop_region
    ratio_crop_region = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop_region > ratio_processing:
        desired_height = (x2 - x1) / ratio_processing
        diff = int(desired_height - (y2 - y1))
        y1 -= diff // 2
        y2 += diff - diff // 2
        if y2 >= image_height:
            diff = y2 - image_height
            y2 -= diff
            y1 -= diff
        if y1 < 0:
            y2 -= y1
            y1 = 0
        if y2 >= image_height:
            y2 = image_height
    else:
        desired_width = (y2 - y1) * ratio_processing
        diff = int(desired_width - (x2 - x1))
        x1 -= diff // 2
        x2 += diff - diff // 2
        if x2 >= image_width:
            diff = x2 - image_width
            x2 -= diff
            x1 -= diff
        if x1 < 0:
            x2 -= x1
            x1 = 0
        if x2 >= image_width:
            x2 = image_width
    return x1, y1, x2, y2


class DecodedSamples(list):
    """Samples that a sampler already decoded to pictures."""

    already_decoded = True


class Processed:
    def __init__(self, p: Any, images_list: list[Image.Image], infotexts: list[str]) -> None:
        self.images = images_list
        self.infotexts = infotexts
        self.extra_generation_params = p.extra_generation_params


def create_infotext(p: Any, iteration: int = 0, position_in_batch: int = 0, use_main_prompt: bool = False,
                    index: int | None = None) -> str:
    """The ``Key: value`` part of the host's infotext (what paste-back parses).

    As the host's: a list value is indexed by the image, a callable is called with this function's
    locals (``p``, ``index``, ``use_main_prompt``, …), and a value of None leaves the key out.
    """
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    params: dict[str, Any] = {"Steps": p.steps, "Sampler": p.sampler_name, "Seed": p.seed,
                              "Size": f"{p.width}x{p.height}",
                              "Denoising strength": getattr(p, "denoising_strength", None),
                              **p.extra_generation_params}
    for key, value in params.items():
        try:
            if isinstance(value, list):
                params[key] = value[index]
            elif callable(value):
                params[key] = value(**locals())
        except Exception:
            from . import errors

            errors.report(f'Error creating infotext for key "{key}"', exc_info=True)
            params[key] = None
    return ", ".join(f"{k}: {v}" for k, v in params.items() if v is not None)


class StableDiffusionProcessingImg2Img:
    """The fields of an img2img job that the extension and this stand-in use."""

    latent_mask_batch_axis = False  # a host variant's difference (Neo: the latent masks are batched)

    def __init__(self, init_images: list[Image.Image], mask: Image.Image | None, *, model: Any,
                 width: int = 64, height: int = 64, batch_size: int = 1, n_iter: int = 1, steps: int = 8,
                 denoising_strength: float = 0.75, seed: int = 1, sampler_name: str = "Euler",
                 mask_blur: int = 4, inpaint_full_res: bool = False, inpaint_full_res_padding: int = 0,
                 resize_mode: int = 0, inpainting_fill: int = 1, inpainting_mask_invert: int = 0,
                 scripts: scripts.ScriptRunner | None = None, script_args: list[Any] | None = None,
                 decode_in_sampler: bool = False,
                 extra_generation_params: dict[str, Any] | None = None) -> None:
        self.init_images = init_images
        self.image_mask = mask
        self.mask = None
        self.sd_model = model
        self.width, self.height = width, height
        self.batch_size, self.n_iter, self.steps = batch_size, n_iter, steps
        self.denoising_strength, self.seed, self.sampler_name = denoising_strength, seed, sampler_name
        self.mask_blur = mask_blur
        self.mask_round = True
        self.inpaint_full_res, self.inpaint_full_res_padding = inpaint_full_res, inpaint_full_res_padding
        self.resize_mode, self.inpainting_fill = resize_mode, inpainting_fill
        self.inpainting_mask_invert = inpainting_mask_invert
        self.scripts, self.script_args = scripts, list(script_args or [])
        self.extra_generation_params: dict[str, Any] = dict(extra_generation_params or {})
        self.overlay_images: list[Image.Image] | None = None
        self.mask_for_overlay: Image.Image | None = None
        self.paste_to: tuple[int, int, int, int] | None = None
        self.latent_mask = None
        self.nmask: torch.Tensor | None = None
        self.init_latent: torch.Tensor | None = None
        self.image_conditioning: torch.Tensor | None = None
        self.decode_in_sampler = decode_in_sampler
        self.iteration = 0
        self.batch_index = 0

    def close(self) -> None:
        """The host drops the job's cached conditioning here (ADetailer calls it after each pass)."""

    def init(self) -> None:
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        crop_region = None
        image_mask = self.image_mask
        if image_mask is not None:
            image_mask = create_binary_mask(image_mask, round=self.mask_round)
            if self.inpainting_mask_invert:
                image_mask = ImageOps.invert(image_mask)
            if self.mask_blur > 0:
                image_mask = image_mask.filter(ImageFilter.GaussianBlur(self.mask_blur))
                self.extra_generation_params["Mask blur"] = self.mask_blur
            if self.inpaint_full_res:
                self.mask_for_overlay = image_mask
                mask = image_mask.convert("L")
                crop_region = get_crop_region(mask, self.inpaint_full_res_padding)
                crop_region = expand_crop_region(crop_region, self.width, self.height, mask.width,
                                                 mask.height)
                x1, y1, x2, y2 = crop_region
                image_mask = images.resize_image(2, mask.crop(crop_region), self.width, self.height)
                self.paste_to = (x1, y1, x2 - x1, y2 - y1)
                self.extra_generation_params["Inpaint area"] = "Only masked"
            else:
                image_mask = images.resize_image(self.resize_mode, image_mask, self.width, self.height)
                np_mask = np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
                self.mask_for_overlay = Image.fromarray(np_mask)
            self.overlay_images = []

        latent_mask = self.latent_mask if self.latent_mask is not None else image_mask
        imgs = []
        for img in self.init_images:
            image = images.flatten(img, shared.opts.img2img_background_color)
            if crop_region is None and self.resize_mode != 3:
                image = images.resize_image(self.resize_mode, image, self.width, self.height)
            if image_mask is not None:
                if self.mask_for_overlay.size != (image.width, image.height):
                    self.mask_for_overlay = images.resize_image(self.resize_mode, self.mask_for_overlay,
                                                                image.width, image.height)
                image_masked = Image.new("RGBa", (image.width, image.height))
                image_masked.paste(image.convert("RGBA").convert("RGBa"),
                                   mask=ImageOps.invert(self.mask_for_overlay.convert("L")))
                self.overlay_images.append(image_masked.convert("RGBA"))
            if crop_region is not None:
                image = images.resize_image(2, image.crop(crop_region), self.width, self.height)
            imgs.append(np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0))

        if len(imgs) == 1:
            batch_images = np.expand_dims(imgs[0], axis=0).repeat(self.batch_size, axis=0)
            if self.overlay_images is not None:
                self.overlay_images = self.overlay_images * self.batch_size
        elif len(imgs) <= self.batch_size:
            self.batch_size = len(imgs)
            batch_images = np.array(imgs)
        else:
            raise RuntimeError(f"bad number of images passed: {len(imgs)}; "
                               f"expecting {self.batch_size} or less")

        image = torch.from_numpy(batch_images)
        self.init_latent = self.sd_model.encode(image)
        if self.resize_mode == 3:
            self.init_latent = F.interpolate(self.init_latent, size=(self.height // 8, self.width // 8),
                                             mode="bilinear")
        if image_mask is not None:
            latent_size = (self.init_latent.shape[-1], self.init_latent.shape[-2])
            latmask = latent_mask.convert("RGB").resize(latent_size)
            latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0)[0] / 255
            if self.mask_round:
                latmask = np.around(latmask)
            latmask = np.tile(latmask[None], (self.init_latent.shape[1], 1, 1))
            self.mask = torch.asarray(1.0 - latmask)
            self.nmask = torch.asarray(latmask)
            if self.init_latent.dim() == 5:  # Neo's video-VAE latents [B, C, 1, h, w]: [C, 1, h, w]
                self.mask, self.nmask = self.mask[:, None], self.nmask[:, None]
            if self.latent_mask_batch_axis:  # Neo: [1, C, h, w] (or [1, C, 1, h, w])
                self.mask, self.nmask = self.mask[None], self.nmask[None]
        self.image_conditioning = self._image_conditioning(image * 2 - 1, image_mask)

    def _image_conditioning(self, source: torch.Tensor, image_mask: Image.Image | None
                            ) -> torch.Tensor | None:
        """Inpainting models get the mask (rounded unless ``mask_round`` is off) and the masked picture."""
        if self.sd_model.conditioning_key != "hybrid":
            return None
        if image_mask is None:
            cond_mask = source.new_ones(1, 1, *source.shape[-2:])
        else:
            cond_mask = torch.from_numpy(np.array(image_mask.convert("L")).astype(np.float32) / 255.0)
            cond_mask = cond_mask[None, None]
            if self.mask_round:
                cond_mask = torch.round(cond_mask)
        weight = shared.opts.inpainting_mask_weight
        cond_image = torch.lerp(source, source * (1.0 - cond_mask), weight)
        cond_latent = self.sd_model.encode((cond_image + 1) / 2)
        cond_mask = F.interpolate(cond_mask, size=cond_latent.shape[-2:])
        return torch.cat([cond_mask.expand(cond_latent.shape[0], -1, -1, -1), cond_latent], 1)

    def sample(self, seeds: list[int]) -> torch.Tensor:
        shape = self.init_latent.shape[1:]
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=noise)
        samples = self.sampler.sample_img2img(self, self.init_latent, noise)
        if self.mask is not None:
            blended = samples * self.nmask + self.init_latent * self.mask
            if self.scripts is not None:
                mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, blended)
                self.scripts.on_mask_blend(self, mba)
                blended = mba.blended_latent
            samples = blended
        if self.decode_in_sampler:
            return DecodedSamples(self.sd_model.decode(samples).unbind(0))
        return samples


class StableDiffusionProcessingTxt2Img:
    """The fields of a txt2img job that the extension, ADetailer and this stand-in use. Like the
    host's, it has no ``image_mask``, ``mask`` or ``nmask``. ``enable_hr``: a hires fix pass
    (latents upscaled ``hr_scale``×, re-noised and sampled again at ``denoising_strength``)."""

    def __init__(self, *, model: Any, width: int = 64, height: int = 64, batch_size: int = 1, n_iter: int = 1,
                 steps: int = 8, seed: int = 1, sampler_name: str = "Euler", enable_hr: bool = False,
                 hr_scale: float = 2.0, denoising_strength: float = 0.5,
                 scripts: scripts.ScriptRunner | None = None, script_args: list[Any] | None = None) -> None:
        self.sd_model = model
        self.width, self.height = width, height
        self.batch_size, self.n_iter, self.steps = batch_size, n_iter, steps
        self.seed, self.sampler_name = seed, sampler_name
        self.enable_hr, self.hr_scale, self.denoising_strength = enable_hr, hr_scale, denoising_strength
        self.scripts, self.script_args = scripts, list(script_args or [])
        self.extra_generation_params: dict[str, Any] = {}
        self.init_latent: torch.Tensor | None = None
        self.image_conditioning: torch.Tensor | None = None
        self.iteration = 0
        self.batch_index = 0

    def init(self) -> None:
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        if self.enable_hr:
            self.extra_generation_params["Hires upscale"] = self.hr_scale
            self.extra_generation_params["Denoising strength"] = self.denoising_strength

    def sample(self, seeds: list[int]) -> torch.Tensor:
        channels = getattr(self.sd_model, "latent_channels", LATENT_CHANNELS)
        shape = (channels, self.height // 8, self.width // 8)
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
        samples = self.sampler.sample(self, noise)
        if not self.enable_hr:
            return samples
        samples = F.interpolate(samples, scale_factor=self.hr_scale, mode="nearest")
        hr_noise = torch.stack([torch.randn(samples.shape[1:], generator=torch.Generator().manual_seed(s + 1))
                                for s in seeds])
        self.init_latent = samples
        return self.sampler.sample_img2img(self, samples, hr_noise)


LATENT_CHANNELS = 4


def process_images(p: StableDiffusionProcessingImg2Img | StableDiffusionProcessingTxt2Img) -> Processed:
    if p.scripts is not None:
        p.scripts.before_process(p)
        p.scripts.process(p)
    p.init()
    output_images: list[Image.Image] = []
    infotexts: list[str] = []
    for n in range(p.n_iter):
        p.iteration = n
        seeds = [p.seed + n * p.batch_size + i for i in range(p.batch_size)]
        samples = p.sample(seeds)
        if p.scripts is not None:
            ps = scripts.PostSampleArgs(samples)
            p.scripts.post_sample(p, ps)
            samples = ps.samples
        if getattr(samples, "already_decoded", False):
            decoded = torch.stack(list(samples)).float()
        else:
            decoded = p.sd_model.decode(samples)
        decoded = torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)
        for i, x_sample in enumerate(decoded):
            p.batch_index = i
            x_sample = (255.0 * np.moveaxis(x_sample.cpu().numpy(), 0, 2)).astype(np.uint8)
            image = Image.fromarray(x_sample)
            if p.scripts is not None:
                pp = scripts.PostprocessImageArgs(image)
                p.scripts.postprocess_image(p, pp)
                image = pp.image
            mask_for_overlay = getattr(p, "mask_for_overlay", None)
            overlay_images = getattr(p, "overlay_images", None)
            if not shared.opts.overlay_inpaint:
                overlay_image = None
            elif overlay_images is not None and i < len(overlay_images):
                overlay_image = overlay_images[i]
            else:
                overlay_image = None
            if p.scripts is not None:
                ppmo = scripts.PostProcessMaskOverlayArgs(i, mask_for_overlay, overlay_image)
                p.scripts.postprocess_maskoverlay(p, ppmo)
                mask_for_overlay, overlay_image = ppmo.mask_for_overlay, ppmo.overlay_image
            image, original_denoised_image = apply_overlay(image, getattr(p, "paste_to", None), overlay_image)
            infotexts.append(create_infotext(p, index=i))
            output_images.append(image)
            if mask_for_overlay is not None and shared.opts.return_mask:
                output_images.append(mask_for_overlay.convert("RGB"))
                infotexts.append(create_infotext(p, index=i))
            if mask_for_overlay is not None and shared.opts.return_mask_composite:
                composite = Image.composite(
                    original_denoised_image.convert("RGBA").convert("RGBa"), Image.new("RGBa", image.size),
                    images.resize_image(2, mask_for_overlay, image.width, image.height).convert("L"))
                output_images.append(composite.convert("RGBA"))
                infotexts.append(create_infotext(p, index=i))
    processed = Processed(p, output_images, infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)
    return processed
