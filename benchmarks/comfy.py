"""ComfyUI: what the patched per-step blend costs against ComfyUI's own hard blends.

Without the patch, ``KSamplerX0Inpaint`` blends twice per step: the noisy input with the re-noised
original (``x·m + (x₀ + σ·ε)·(1 − m)``) and the prediction with the original (``out·m + x₀·(1 − m)``).
With it, the post-CFG function does ``get_modified_nmask`` + ``latent_blend`` once (the patch's own
``Run.blend``, as the sampler calls it). Shapes as ComfyUI has them: latents ``[B, 4, 128, 128]``
(1024² pictures), the prepared mask ``[B, 4, 128, 128]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.noise_level import SIGMA_IS_NOISE_LEVEL
from soft_inpainting_comfy.patch import Run

from . import report
from .cases import make_case
from .report import Row
from .timing import measure_together

SIZE = 128
BATCHES = (1, 4)
HARD, OURS = "comfy_hard_blends", "comfy_patched_blend"


class ComfyStep:
    """One step's inputs in ComfyUI's layout, and the two ways of blending them."""

    def __init__(self, batch: int, device: str) -> None:
        case = make_case(SIZE, batch, device)
        self.mask = case.nmask.expand(batch, -1, -1, -1).contiguous()  # prepare_mask: [B, C, h, w]
        self.latent, self.out = case.latent_orig, case.latent_processed
        self.noise = torch.randn(self.latent.shape, generator=torch.Generator().manual_seed(1)).to(device)
        self.sigma = case.sigma
        self.run = Run(SoftInpaintingSettings(), self.latent, self.mask, SIGMA_IS_NOISE_LEVEL, "CFGGuider")

    def hard_blends(self) -> torch.Tensor:
        """ComfyUI's two blends of one step (input side, then output side)."""
        keep = 1.0 - self.mask
        sigma = self.sigma.reshape(-1, 1, 1, 1)
        x_in = self.out * self.mask + (self.latent + self.noise * sigma) * keep
        return x_in, self.out * self.mask + self.latent * keep

    def patched_blend(self) -> torch.Tensor:
        return self.run.post_cfg({"denoised": self.out, "sigma": self.sigma})


def rows(device: str, budget_s: float, min_repeats: int, batches: Sequence[int] = BATCHES) -> list[Row]:
    found = []
    for batch in batches:
        step = ComfyStep(batch, device)
        timed = measure_together({HARD: step.hard_blends, OURS: step.patched_blend}, device,
                                 budget_s=budget_s, min_repeats=min_repeats)
        found += [Row(device, "comfy_step", name, SIZE, batch, t.median, t.best, t.repeats, report.MEASURED)
                  for name, t in timed.items()]
    return found


def table(found: Sequence[Row], device: str) -> str:
    body = []
    mine = [r for r in found if r.device == device and r.stage == "comfy_step"]
    for batch in sorted({r.batch for r in mine}):
        hard, ours = (next(r for r in mine if r.batch == batch and r.method == m) for m in (HARD, OURS))
        body.append([f"{SIZE}²", str(batch), report.format_seconds(hard.median_s),
                     report.format_seconds(ours.median_s), report.format_ratio(ours.median_s, hard.median_s)])
    return report.table(["latent", "batch", "ComfyUI's hard blends", "patched blend", "patched ÷ hard"], body)
