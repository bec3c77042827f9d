"""Latents of another rank than ``[B, C, H, W]``, met in the Forge family.

Neo's models with a video VAE (Qwen-Image, Anima, Wan, …) keep picture latents as
``[B, C, T, H, W]`` with ``T = 1`` (a single frame), and their latent masks as ``[1, C, 1, H, W]``
(``modules/processing.py``: ``self.nmask[None, :, None, :, :]``). The core works on
``[B, C, H, W]``; frames are independent pictures there, so they are folded into the batch axis and
unfolded afterwards. For ``T = 1`` this is a view: nothing is copied and the result is exactly the
4-D computation.
"""

from __future__ import annotations

import torch

__all__ = ["fold_frames", "unfold_frames"]


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, H, W]`` → ``[B·T, C, H, W]`` (frames as batch items); other ranks unchanged."""
    if x.dim() != 5:
        return x
    b, c, t, h, w = x.shape
    if t == 1:
        return x.squeeze(2)
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def unfold_frames(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`fold_frames` for a result shaped like ``fold_frames(like)``."""
    if like.dim() != 5:
        return x
    b, c, t, h, w = like.shape
    if t == 1:
        return x.unsqueeze(2)
    return x.reshape(b, t, c, h, w).transpose(1, 2)
