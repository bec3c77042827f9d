"""A tiny, exact diffusion model for the host stand-in: no weights, deterministic, cheap.

- "VAE": 8× average pooling of the picture in [−1, 1] into 3 colour channels plus their mean
  (4 latent channels, like SD); decoding repeats each latent pixel over its 8×8 block.
- Denoiser: the exact posterior mean ``E[x₀ | x]`` for a Gaussian prior ``x₀ ~ N(target, I)``
  noised as ``x = x₀ + σ·ε``: ``D(x, σ) = target + (x − target) / (1 + σ²)``. ``target`` is the
  latent of a plain picture of ``GENERATED_COLOUR``, so "generated content" is recognisable.
- ``alphas_cumprod``: Stable Diffusion's scaled-linear schedule (β 0.00085 … 0.012, 1000 steps).
- ``conditioning_key``: ``"crossattn"``, or ``"hybrid"`` for an inpainting (9-channel) model, which
  records the conditioning mask it is handed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OPT_F = 8
LATENT_CHANNELS = 4
GENERATED_COLOUR = (40, 90, 220)


class FakeModel:
    def __init__(self, inpainting: bool = False) -> None:
        self.conditioning_key = "hybrid" if inpainting else "crossattn"
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1 - betas, 0).to(torch.float32)
        self.seen_conditioning: list[torch.Tensor] = []
        self.calls = 0

    @staticmethod
    def encode(pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> ``[B, 4, H/8, W/8]``."""
        colour = F.avg_pool2d(pixels * 2 - 1, OPT_F)
        return torch.cat([colour, colour.mean(1, keepdim=True)], 1)

    @staticmethod
    def decode(latents: torch.Tensor) -> torch.Tensor:
        """``[B, 4, h, w]`` -> ``[B, 3, 8h, 8w]`` in [−1, 1] (the host clamps after decoding)."""
        return F.interpolate(latents[:, :3].float(), scale_factor=OPT_F, mode="nearest")

    def target(self, like: torch.Tensor) -> torch.Tensor:
        colour = torch.tensor(GENERATED_COLOUR, dtype=like.dtype, device=like.device) / 127.5 - 1
        latent = torch.cat([colour, colour.mean()[None]])[None, :, None, None]
        return latent.expand_as(like)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, image_cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        """The exact posterior mean at noise level ``sigma`` ([B])."""
        self.calls += 1
        if self.conditioning_key == "hybrid" and image_cond is not None:
            self.seen_conditioning.append(image_cond[:, :1].clone())
        target = self.target(x)
        return target + (x - target) / (1 + sigma[:, None, None, None] ** 2)


# -- model sampling, where the hosts keep it -----------------------------------------------------------

class ModelSamplingDiscreteFlow:
    """A1111 1.10's ``modules/models/sd3/sd3_impls.py`` class of that name: 1000 discrete flow sigmas
    ``shift·t / (1 + (shift − 1)·t)`` for ``t = 1/1000 … 1`` (the last is 1 exactly) and
    ``noise_scaling = σ·noise + (1 − σ)·latent``. ``SD3Inferencer.model.model_sampling`` holds it."""

    def __init__(self, shift: float = 3.0) -> None:
        self.shift = shift
        self.sigmas = self.sigma(torch.arange(1, 1001, dtype=torch.float32))

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        t = timestep / 1000.0
        return self.shift * t / (1 + (self.shift - 1) * t)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return sigma * noise + (1.0 - sigma) * latent_image


class ForgePrediction:
    """Forge's ``backend/modules/k_prediction.py`` predictor as far as ``noise_scaling`` goes (Forge
    ``main`` dfdcbab6, Neo 5692d2d1): ``"const"`` (flow models: Flux, SD3, Chroma, …) gives
    ``σ·noise + (1 − σ)·latent``; the others ``latent + σ·noise`` (Neo adds in place)."""

    def __init__(self, prediction_type: str = "epsilon") -> None:
        self.prediction_type = prediction_type

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        if self.prediction_type == "const":
            return sigma * noise + (1.0 - sigma) * latent_image
        noise = noise * (torch.sqrt(1.0 + sigma ** 2.0) if max_denoise else sigma)
        noise += latent_image
        return noise


class _Namespace:
    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


def with_forge_objects(model: FakeModel) -> FakeModel:
    """The model as the Forge family holds it: ``forge_objects.unet.model.predictor`` (idempotent;
    a flow model gets the ``"const"`` predictor). Forge's models have no A1111 ``model`` attribute."""
    if getattr(model, "forge_objects", None) is None:
        prediction = "const" if isinstance(model, FakeFlowModel) else "epsilon"
        predictor = getattr(model, "forge_predictor", None) or ForgePrediction(prediction)
        model.forge_objects = _Namespace(unet=_Namespace(model=_Namespace(predictor=predictor)))
        model.__dict__.pop("model", None)
    return model


# -- a flow-matching model, shaped like A1111 1.10's SD3 ---------------------------------------------------

FLOW_LATENT_CHANNELS = 16


class FakeFlowModel(FakeModel):
    """A flow-matching model with 16 latent channels, shaped like A1111 1.10's ``SD3Inferencer``.

    - "VAE": the 4 channels of :class:`FakeModel` and three transforms of them (16 channels of
      about the same spread); decoding reads the colour channels as before.
    - Sampler input ``(1 − σ)·x₀ + σ·ε`` for σ in 0–1 (``add_noise_to_latent`` starts img2img so);
      the denoiser is the exact posterior mean for ``x₀ ~ N(target, I)``:
      ``target + (1 − σ)/((1 − σ)² + σ²)·(x − (1 − σ)·target)``.
    - ``model.model_sampling``: :class:`ModelSamplingDiscreteFlow` (shift 3), as in A1111;
      ``alphas_cumprod = 1 / (σ² + 1)`` of its sigmas, as ``SD3Inferencer`` sets it.
    - ``frames=True``: latents ``[B, 16, 1, h, w]``, as Neo's models with a video VAE (Qwen-Image,
      Anima, Wan) keep a picture.
    """

    latent_channels = FLOW_LATENT_CHANNELS

    def __init__(self, shift: float = 3.0, frames: bool = False) -> None:
        super().__init__()
        self.frames = frames
        self.model = _Namespace(model_sampling=ModelSamplingDiscreteFlow(shift))
        self.flow_sampling = self.model.model_sampling
        self.alphas_cumprod = 1 / (self.flow_sampling.sigmas ** 2 + 1)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        base = FakeModel.encode(pixels)
        latents = torch.cat([base, 0.5 * base + 0.25, -base, base.roll(1, dims=1)], 1)
        return latents.unsqueeze(2) if self.frames else latents

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return FakeModel.decode(latents.squeeze(2) if latents.dim() == 5 else latents)

    def target(self, like: torch.Tensor) -> torch.Tensor:
        colour = torch.tensor(GENERATED_COLOUR, dtype=like.dtype, device=like.device) / 255
        picture = colour[None, :, None, None].expand(1, 3, OPT_F, OPT_F)
        return self.encode(picture).expand_as(like)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, image_cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        self.calls += 1
        target = self.target(x)
        s = sigma.reshape(-1, *[1] * (x.dim() - 1))
        return target + (1 - s) / ((1 - s) ** 2 + s ** 2) * (x - (1 - s) * target)

    def add_noise_to_latent(self, x: torch.Tensor, noise: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        """A1111's ``SD3Inferencer.add_noise_to_latent``: img2img's first sampler input."""
        return x * (1 - amount) + noise * amount

    def get_sigmas(self, steps: int) -> torch.Tensor:
        """k-diffusion's ``DiscreteSchedule.get_sigmas`` over the 1000 flow sigmas (A1111 SD3's
        default schedule): ``steps`` values from σ_max = 1 down, log-interpolated, then 0."""
        t = torch.linspace(999, 0, steps, dtype=torch.float32)
        log_sigmas = self.flow_sigmas_log()
        low, high = t.floor().long(), t.ceil().long()
        w = t - low
        sigmas = ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()
        return torch.cat([sigmas, sigmas.new_zeros(1)])

    def flow_sigmas_log(self) -> torch.Tensor:
        return self.flow_sampling.sigmas.log()


class UnknownSampling:
    """A model sampling of neither kind (``cos·latent + sin·noise``, a variance-preserving input)."""

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return torch.cos(sigma) * latent_image + torch.sin(sigma) * noise


class FakeUnknownModel(FakeModel):
    """An SD-like model whose model sampling is neither a noise level nor flow matching."""

    def __init__(self) -> None:
        super().__init__()
        self.model = _Namespace(model_sampling=UnknownSampling())
        self.forge_predictor = UnknownSampling()
