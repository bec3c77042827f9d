"""A weight-free diffusion model: the exact posterior-mean denoiser of a finite image set.

If clean latents ``x₀`` are drawn uniformly from items ``{x₁ … x_N}`` and noised as
``x = x₀ + σ·ε`` (the k-diffusion convention, ``ε ~ N(0, I)``), the best denoiser in the
squared-error sense — what a diffusion network is trained to approximate — is

    ``D(x, σ) = E[x₀ | x] = Σᵢ wᵢ xᵢ``,  ``w = softmax(−|x − xᵢ|² / (2σ²))``.

It is exact, needs no weights and no download, and what it generates is real image content
(at low noise it settles on the items that best explain ``x``). The demo uses it as its model.
"""

from __future__ import annotations

import torch

__all__ = ["PosteriorMeanDenoiser"]


class PosteriorMeanDenoiser:
    """``E[x₀ | x₀ + σ·ε = x]`` for ``x₀`` uniform over ``items`` (``[N, C, H, W]``).

    Distances are taken in float64: at the smallest noise levels the logits ``|x − xᵢ|² / 2σ²``
    are differences of large numbers that float32 would round away.
    """

    def __init__(self, items: torch.Tensor) -> None:
        if items.dim() != 4 or items.shape[0] < 1:
            raise ValueError(f"items must be a non-empty [N, C, H, W] tensor, got {tuple(items.shape)}")
        self.item_shape = tuple(items.shape[1:])
        self._flat = items.reshape(items.shape[0], -1).to(torch.float64)
        self._sq_norms = (self._flat ** 2).sum(dim=1)

    def weights(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Posterior probabilities of the items given ``x`` (``[B, N]``)."""
        if tuple(x.shape[1:]) != self.item_shape:
            raise ValueError(f"x has shape {tuple(x.shape[1:])} per item, the set {self.item_shape}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        sq_dist = (flat ** 2).sum(dim=1, keepdim=True) - 2 * flat @ self._flat.T + self._sq_norms
        return torch.softmax(-sq_dist / (2 * float(sigma) ** 2), dim=1)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The denoised prediction, in ``x``'s shape, dtype and device."""
        mean = self.weights(x, sigma) @ self._flat
        return mean.reshape(x.shape).to(device=x.device, dtype=x.dtype)
