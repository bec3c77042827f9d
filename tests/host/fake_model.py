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
