"""``comfy.samplers``: the guider, the k-diffusion sampler object and the inpaint wrapper, in the
host's call order (v0.3.64; ``outer_predict_noise`` arrived in v0.3.52)."""

from __future__ import annotations

import math
from typing import Any

import torch

import comfy

from . import model_patcher, patcher_extension, sampler_helpers
from .k_diffusion import sampling as k_diffusion_sampling


def calc_cond_batch(model, conds, x, timestep, model_options):
    """One prediction per cond (a cond here is a float: an offset that stands in for the prompt)."""
    return [None if c is None else model.apply_model(x, timestep, cond_scale_offset=c) for c in conds]


def cfg_function(
    model, cond_pred, uncond_pred, cond_scale, x, timestep, model_options=None, cond=None, uncond=None
):
    model_options = model_options or {}
    cfg_result = cond_pred if uncond_pred is None else uncond_pred + (cond_pred - uncond_pred) * cond_scale
    for fn in model_options.get("sampler_post_cfg_function", []):
        args = {
            "denoised": cfg_result,
            "cond": cond,
            "uncond": uncond,
            "cond_scale": cond_scale,
            "model": model,
            "uncond_denoised": uncond_pred,
            "cond_denoised": cond_pred,
            "sigma": timestep,
            "model_options": model_options,
            "input": x,
        }
        cfg_result = fn(args)
    return cfg_result


def sampling_function(model, x, timestep, uncond, cond, cond_scale, model_options=None, seed=None):
    model_options = model_options or {}
    uncond_ = None if math.isclose(cond_scale, 1.0) else uncond
    out = calc_cond_batch(model, [cond, uncond_], x, timestep, model_options)
    return cfg_function(
        model, out[0], out[1], cond_scale, x, timestep, model_options=model_options, cond=cond, uncond=uncond_
    )


class KSamplerX0Inpaint:
    def __init__(self, model, sigmas):
        self.inner_model = model
        self.sigmas = sigmas

    def __call__(self, x, sigma, denoise_mask, model_options=None, seed=None):
        model_options = model_options or {}
        if denoise_mask is not None:
            if "denoise_mask_function" in model_options:
                denoise_mask = model_options["denoise_mask_function"](
                    sigma, denoise_mask, extra_options={"model": self.inner_model, "sigmas": self.sigmas}
                )
            latent_mask = 1.0 - denoise_mask
            x = (
                x * denoise_mask
                + self.inner_model.inner_model.scale_latent_inpaint(
                    x=x, sigma=sigma, noise=self.noise, latent_image=self.latent_image
                )
                * latent_mask
            )
        out = self.inner_model(x, sigma, model_options=model_options, seed=seed)
        if denoise_mask is not None:
            out = out * denoise_mask + self.latent_image * latent_mask
        return out


class KSAMPLER:
    def __init__(self, sampler_function):
        self.sampler_function = sampler_function

    def max_denoise(self, model_wrap, sigmas):
        max_sigma = float(model_wrap.inner_model.model_sampling.sigma_max)
        sigma = float(sigmas[0])
        return math.isclose(max_sigma, sigma, rel_tol=1e-05) or sigma > max_sigma

    def sample(
        self,
        model_wrap,
        sigmas,
        extra_args,
        callback,
        noise,
        latent_image=None,
        denoise_mask=None,
        disable_pbar=False,
    ):
        extra_args["denoise_mask"] = denoise_mask
        model_k = KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image = latent_image
        model_k.noise = noise
        ms = model_wrap.inner_model.model_sampling
        noise = ms.noise_scaling(sigmas[0], noise, latent_image, self.max_denoise(model_wrap, sigmas))
        total_steps = len(sigmas) - 1
        k_callback = None
        if callback is not None:

            def k_callback(x):
                return callback(x["i"], x["denoised"], x["x"], total_steps)

        samples = self.sampler_function(
            model_k, noise, sigmas, extra_args=extra_args, callback=k_callback, disable=disable_pbar
        )
        return ms.inverse_noise_scaling(sigmas[-1], samples)


def ksampler(name: str) -> KSAMPLER:
    return KSAMPLER(getattr(k_diffusion_sampling, f"sample_{name}"))


class CFGGuider:
    def __init__(self, model_patcher_: model_patcher.ModelPatcher):
        self.model_patcher = model_patcher_
        self.model_options = model_patcher_.model_options
        self.original_conds: dict[str, Any] = {}
        self.cfg = 1.0

    def set_conds(self, positive, negative):
        self.original_conds = {"positive": positive, "negative": negative}

    def set_cfg(self, cfg):
        self.cfg = cfg

    def __call__(self, *args, **kwargs):
        if comfy.has_predict_noise():
            return self.outer_predict_noise(*args, **kwargs)
        return self.predict_noise(*args, **kwargs)

    def outer_predict_noise(self, x, timestep, model_options=None, seed=None):
        return patcher_extension.WrapperExecutor.new_class_executor(
            self.predict_noise,
            self,
            patcher_extension.get_all_wrappers("predict_noise", self.model_options, is_model_options=True),
        ).execute(x, timestep, model_options, seed)

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        return sampling_function(
            self.inner_model,
            x,
            timestep,
            self.conds.get("negative"),
            self.conds.get("positive"),
            self.cfg,
            model_options=model_options,
            seed=seed,
        )

    def inner_sample(
        self, noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar, seed
    ):
        if latent_image is not None and torch.count_nonzero(latent_image) > 0:
            latent_image = self.inner_model.process_latent_in(latent_image)
        # process_conds: the model's extra conds see the prepared mask (9-channel concat mask)
        self.inner_model.extra_conds(
            denoise_mask=denoise_mask, latent_image=latent_image, noise=noise, **self.conds.get("extra", {})
        )
        extra_model_options = model_patcher.create_model_options_clone(self.model_options)
        extra_model_options.setdefault("transformer_options", {})["sample_sigmas"] = sigmas
        extra_args = {"model_options": extra_model_options, "seed": seed}
        executor = patcher_extension.WrapperExecutor.new_class_executor(
            sampler.sample,
            sampler,
            patcher_extension.get_all_wrappers(
                "sampler_sample", extra_args["model_options"], is_model_options=True
            ),
        )
        samples = executor.execute(
            self, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar
        )
        return self.inner_model.process_latent_out(samples.to(torch.float32))

    def outer_sample(
        self,
        noise,
        latent_image,
        sampler,
        sigmas,
        denoise_mask=None,
        callback=None,
        disable_pbar=False,
        seed=None,
    ):
        self.inner_model = self.model_patcher.model
        device = self.model_patcher.load_device
        if denoise_mask is not None:
            denoise_mask = sampler_helpers.prepare_mask(denoise_mask, noise.shape, device)
        return self.inner_sample(
            noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar, seed
        )

    def sample(
        self,
        noise,
        latent_image,
        sampler,
        sigmas,
        denoise_mask=None,
        callback=None,
        disable_pbar=False,
        seed=None,
    ):
        if sigmas.shape[-1] == 0:
            return latent_image
        self.conds = dict(self.original_conds)
        orig_model_options = self.model_options
        self.model_options = model_patcher.create_model_options_clone(self.model_options)
        try:
            # prepare_model_patcher: the patcher's wrappers join this run's options
            patcher_extension.merge_nested_dicts(
                self.model_options["transformer_options"].setdefault("wrappers", {}),
                self.model_patcher.wrappers,
            )
            return self.outer_sample(
                noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed
            )
        finally:
            self.model_options = orig_model_options


class Guider_Basic(CFGGuider):
    def set_conds(self, positive):
        self.original_conds = {"positive": positive}
