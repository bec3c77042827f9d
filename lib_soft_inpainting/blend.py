"""Stage 1: the per-step, magnitude-preserving blend (SPEC §5).

Conventions: latents are ``[B, C, H, W]``; masks follow the host's polarity, ``nmask`` = 1 where
generation is allowed and 0 where the original is kept, shaped ``[C, H, W]`` or ``[B, C, H, W]``.
Everything stays on the tensors' device with no host synchronisation (no ``.item()``, no CPU copy,
no data-dependent Python branch), so a step costs a few fused element-wise kernels.
"""

from __future__ import annotations

import torch

from .settings import SoftInpaintingSettings

__all__ = ["get_modified_nmask", "latent_blend", "timestep_to_sigma"]

_NORM_EPS = 1e-5


def get_modified_nmask(settings: SoftInpaintingSettings, nmask: torch.Tensor,
                       sigma: torch.Tensor | float) -> torch.Tensor:
    """``nmask ** (sigma ** schedule_bias * preservation_strength)`` (SPEC §5).

    High sigma and high strength push grey values toward 0 (keep the original). ``nmask`` is
    clamped to [0, 1] first, so a mask with stray values cannot raise a negative base to a
    fractional power (NaN); for masks already in [0, 1] this changes nothing.
    """
    exponent = sigma ** settings.mask_blend_power * settings.mask_blend_scale
    if not isinstance(exponent, torch.Tensor) and nmask.is_floating_point():
        # torch refuses a python exponent beyond the mask's dtype (999.0 ** 2 for float16); any
        # exponent that large already sends every value below 1 to 0, so the cap changes nothing.
        exponent = min(exponent, torch.finfo(nmask.dtype).max)
    clamped = nmask.clamp(0, 1)
    # In place into the clamped copy where the dtype allows: one mask-sized buffer per step.
    return clamped.pow_(exponent) if clamped.is_floating_point() else torch.pow(clamped, exponent)


def _channel_weight(t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(t broadcastable to the latents, its first channel as ``[*, 1, H, W]``)."""
    if t.dim() == 3:
        return t.unsqueeze(0), t[0:1][None]
    if t.dim() == 4:
        return t, t[:, 0:1]
    raise ValueError(f"soft inpainting: the blend mask must be [C, H, W] or [B, C, H, W], got shape "
                     f"{tuple(t.shape)} for latents of {ndim} dimensions")


def _squared_norm(x: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm over the channel axis (dim 1), keepdim, summed one channel at a time.

    ``torch.linalg.vector_norm`` over the channel axis runs 10–100× slower on the CPU, and a
    ``square().sum(1)`` allocates a temporary as large as the latents; this runs every step.
    """
    total = x[:, 0:1].square()
    for c in range(1, x.shape[1]):
        channel = x[:, c:c + 1]
        total.addcmul_(channel, channel)
    return total


def _check_mask_fits(t: torch.Tensor, latent_shape: torch.Size) -> None:
    """A clear error, naming both shapes, for a mask that cannot weight these latents: it must be
    ``[C, H, W]`` or ``[B, C, H, W]`` with the latents' C, H, W and a batch of 1 or the latents'."""
    batch, *chw = latent_shape
    fits = (t.dim() == 3 and list(t.shape) == chw) or \
        (t.dim() == 4 and list(t.shape[1:]) == chw and t.shape[0] in (1, batch))
    if not fits:
        raise ValueError(f"soft inpainting: the blend mask {tuple(t.shape)} does not fit the latents "
                         f"{tuple(latent_shape)}: it must be [C, H, W] or [B, C, H, W] with the same C, H, W "
                         f"and a batch of 1 or {batch}")


def latent_blend(settings: SoftInpaintingSettings, a: torch.Tensor, b: torch.Tensor,
                 t: torch.Tensor) -> torch.Tensor:
    """Blend original ``a`` and current ``b`` by weight ``t`` of ``b``, keeping vector lengths.

    The direction comes from the linear interpolation; the length is the power mean
    ``((1 − t)·|a|^p + t·|b|^p)^(1/p)`` with ``p`` = transition contrast boost (SPEC §5).
    The power mean is evaluated in the log domain in float32 (log-sum-exp), which neither
    overflows at ``|x|^32`` nor loses a float32-denormal ``t`` against a huge ``|b|^p``, and needs
    no float64 (slow on consumer GPUs, absent on MPS). ``t`` is clamped to [0, 1]. The result has
    ``b``'s dtype and device.
    """
    if a.shape != b.shape:
        raise ValueError(f"soft inpainting: original latents {tuple(a.shape)} and current latents "
                         f"{tuple(b.shape)} differ in shape")
    if a.dim() != 4:
        raise ValueError(f"soft inpainting: latents {tuple(a.shape)} must be [B, C, H, W]")
    _check_mask_fits(t, a.shape)
    t = t.clamp(0, 1)
    t2, t3 = _channel_weight(t, a.dim())
    out_dtype = b.dtype
    work = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    a_w, b_w = a.to(work), b.to(work)

    v = torch.lerp(a_w, b_w, t2.to(work))
    v_len = _squared_norm(v).sqrt_().add_(_NORM_EPS)

    # p·log|x| = (p/2)·log|x|²; log(0) = -inf is fine for log-sum-exp. In place where the
    # result has the full [B, 1, H, W] shape: on the CPU fresh buffers cost page faults.
    p = float(settings.inpaint_detail_preservation)
    t3 = t3.to(work)
    log_a = _squared_norm(a_w).log_().mul_(p / 2).add_(torch.log1p(-t3))
    log_b = _squared_norm(b_w).log_().mul_(p / 2).add_(torch.log(t3))
    scale = torch.logaddexp(log_a, log_b, out=log_a).div_(p).exp_().div_(v_len)
    return v.mul_(scale).to(out_dtype)


def timestep_to_sigma(timestep: torch.Tensor | float, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The noise level ``sqrt((1 − ᾱ_t) / ᾱ_t)`` of a discrete timestep (0–999) under the model's
    schedule: what a k-diffusion sampler would pass as sigma at that step.

    Timestep samplers (DDIM, PLMS, UniPC) hand the hook a timestep where k-diffusion samplers hand
    a sigma; raised to the schedule bias a timestep is huge and the soft mask turns binary.
    """
    alphas = alphas_cumprod
    if alphas.dtype not in (torch.float32, torch.float64):
        alphas = alphas.float()
    t = torch.as_tensor(timestep, device=alphas.device).round().long().clamp(0, alphas.shape[0] - 1)
    alpha = alphas.index_select(0, t.reshape(-1)).reshape(t.shape)
    return ((1 - alpha) / alpha).sqrt().to(torch.float32)
