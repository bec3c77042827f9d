"""``modules.torch_utils.float64``: the widest float a device has (MPS and XPU have no float64)."""

from __future__ import annotations

import torch


def float64(t: torch.Tensor) -> torch.dtype:
    return torch.float32 if t.device.type in ("mps", "xpu") else torch.float64
