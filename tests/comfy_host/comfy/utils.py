"""``comfy.utils``: mask resizing as the sampler does it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    if tensor.shape[0] > batch_size:
        return tensor[:batch_size]
    if tensor.shape[0] < batch_size:
        reps = math.ceil(batch_size / tensor.shape[0])
        return tensor.repeat(reps, *([1] * (tensor.dim() - 1)))[:batch_size]
    return tensor


def reshape_mask(mask: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A MASK (``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]``) at ``shape`` = ``[B, C, h, w]``."""
    mask = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1])
    mask = F.interpolate(mask, size=tuple(shape[2:]), mode="bilinear")
    if mask.shape[1] < shape[1]:
        mask = mask.repeat(1, shape[1], 1, 1)[:, : shape[1]]
    return repeat_to_batch_size(mask, shape[0])
