"""A weight-free, *local* diffusion model: the patch-based posterior mean of Kamb & Ganguli (2024).

"An analytic theory of creativity in convolutional diffusion models" shows that trained
convolutional U-Nets behave like the ideal denoiser under two constraints, locality and
equivariance: each output pixel is the posterior mean of the *centre* of a training patch, over
all training patches at all positions, given the noisy patch centred on that pixel:

    ``D(x, σ)[p] = Σⱼ wⱼ cⱼ``,  ``w = softmax(−|x[patch at p] − Pⱼ|² / (2σ²))``,

where ``Pⱼ`` runs over every patch of every training image and ``cⱼ`` is its centre pixel. Unlike
the global posterior mean (:class:`~.posterior.PosteriorMeanDenoiser`), which at low noise snaps
to one whole training image, this one at low noise keeps every pixel whose neighbourhood already
looks like the data — what a trained model does at the border of an inpainting mask. Patches
shrink as the noise falls (coarse structure first, then fine detail), as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_PATCH_SIZES", "PatchPosteriorDenoiser"]

# (lowest sigma, patch size): the first row whose sigma the step reaches gives the size.
DEFAULT_PATCH_SIZES: tuple[tuple[float, int], ...] = ((2.0, 7), (0.4, 5), (0.0, 3))
QUERY_CHUNK = 1024


class PatchPosteriorDenoiser:
    """Locally consistent, translation-equivariant posterior mean over the patches of ``items``.

    ``items``: training latents ``[N, C, H, W]``. ``excluded``: optional ``[N, H, W]`` bool, pixels
    that are not data (no patch touching them is used). ``active``: optional ``[h, w]`` bool of the
    query; pixels outside it are returned as given (the caller discards them, e.g. outside the
    inpainting mask), which saves their work. Distances are computed in float32 around the mean
    patch, so the large common part of the squared lengths cancels before rounding.
    """

    def __init__(self, items: torch.Tensor, excluded: torch.Tensor | None = None,
                 active: torch.Tensor | None = None,
                 patch_sizes: Sequence[tuple[float, int]] = DEFAULT_PATCH_SIZES) -> None:
        if items.dim() != 4 or items.shape[0] < 1:
            raise ValueError(f"items must be a non-empty [N, C, H, W] tensor, got {tuple(items.shape)}")
        if any(size < 1 or size % 2 == 0 for _, size in patch_sizes):
            raise ValueError(f"patch sizes must be odd and positive, got {[s for _, s in patch_sizes]}")
        self.channels = items.shape[1]
        self.items = items.float()
        self.excluded = None if excluded is None else excluded.bool()
        self.active = None if active is None else active.bool()
        self.patch_sizes = sorted(patch_sizes, reverse=True)
        self._banks: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def patch_size(self, sigma: float) -> int:
        for lowest, size in self.patch_sizes:
            if sigma >= lowest:
                return size
        return self.patch_sizes[-1][1]

    def _bank(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every valid patch of the items (centred), its squared length and its centre pixel."""
        if size not in self._banks:
            patches = F.unfold(self.items, size)  # [N, C·size², L]
            patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
            if self.excluded is not None:
                touched = F.max_pool2d(self.excluded[:, None].float(), size, stride=1)
                patches = patches[touched.reshape(-1) == 0]
            if patches.shape[0] == 0:
                raise ValueError(f"no {size}×{size} training patch is free of excluded pixels")
            centre = (size * size) // 2
            centres = patches.reshape(-1, self.channels, size * size)[:, :, centre].contiguous()
            mean = patches.mean(dim=0)
            patches = patches - mean
            self._banks[size] = (patches, (patches ** 2).sum(dim=1), centres, mean)
        return self._banks[size]

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The denoised prediction, in ``x``'s shape, dtype and device."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be [B, {self.channels}, H, W], got shape {tuple(x.shape)}")
        sigma = float(sigma)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        size = self.patch_size(sigma)
        patches, sq_norms, centres, mean = (t.to(x.device) for t in self._bank(size))
        batch, channels, height, width = x.shape
        radius = size // 2
        source = x.float()
        padded = F.pad(source, (radius,) * 4, mode="replicate")
        queries = F.unfold(padded, size).transpose(1, 2).reshape(-1, channels * size * size) - mean
        active = torch.ones(height, width, dtype=torch.bool, device=source.device)
        if self.active is not None:
            active = self.active.to(source.device)
        rows = active.reshape(-1).repeat(batch).nonzero().squeeze(1)
        out = source.permute(0, 2, 3, 1).reshape(-1, channels).clone()
        scale = 1.0 / (2 * sigma * sigma)
        for chunk in rows.split(QUERY_CHUNK):
            logits = (queries[chunk] @ patches.T).mul_(2).sub_(sq_norms).mul_(scale)
            out[chunk] = torch.softmax(logits, dim=1) @ centres
        out = out.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(x.dtype)
        return torch.where(active, out, x)
