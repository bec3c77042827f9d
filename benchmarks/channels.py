"""16-channel latents (SD3, Flux) beside 4-channel ones (SD, SDXL): what the channel count costs.

Measured side by side, at a 128² latent (1024² picture), batches 1 and 4:

- every step, ``get_modified_nmask`` + ``latent_blend`` on ``[B, 4, h, w]`` and ``[B, 16, h, w]``;
  and the diffusers adapter's whole flow-matching step (``x̂₀ = sample − σ·v``, the blend, the
  velocity back) on ``[B, 16, h, w]`` latents and on Flux's packed ``[B, (h/2)·(w/2), 64]`` tokens,
  which it unpacks for the blend and packs again;
- after sampling, ``latent_difference_masks`` on 4 and 16 channels, and on packed Flux latents
  (unpacked first, as the adapter does once after sampling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lib_soft_inpainting.composite import latent_difference_masks
from lib_soft_inpainting.integrations.diffusers_flow import flow_blended_output, pack_latents, unpack_latents
from lib_soft_inpainting.integrations.workflow import SoftBlend
from lib_soft_inpainting.noise_level import NoiseLevel

from . import report
from .cases import make_case
from .report import Row
from .timing import measure_together

SIZE = 128
BATCHES = (1, 4)
FLOW_SIGMA = 0.6  # a mid-schedule flow sigma; its equivalent noise level is 1.5
STEP, MASKS = "channels_step", "channels_masks"
BLEND_4, BLEND_16, FLOW_16, FLOW_PACKED = "blend_4ch", "blend_16ch", "flow_step_16ch", "flow_step_packed"
MASKS_4, MASKS_16, MASKS_PACKED = "masks_4ch", "masks_16ch", "masks_packed"
METHODS = {STEP: (BLEND_4, BLEND_16, FLOW_16, FLOW_PACKED), MASKS: (MASKS_4, MASKS_16, MASKS_PACKED)}


class ChannelCases:
    """The same workload with 4 and 16 latent channels, and the 16-channel one packed as Flux packs it."""

    def __init__(self, batch: int, device: str) -> None:
        self.four = make_case(SIZE, batch, device)
        self.sixteen = make_case(SIZE, batch, device, channels=16)
        case = self.sixteen
        self.level = NoiseLevel(is_flow=True)
        self.blend = SoftBlend(case.settings, case.latent_orig[:1], case.nmask)
        noise = torch.randn(case.latent_orig.shape, generator=torch.Generator().manual_seed(1)).to(device)
        self.sample = (1 - FLOW_SIGMA) * case.latent_orig + FLOW_SIGMA * noise
        self.velocity = (self.sample - case.latent_processed) / FLOW_SIGMA
        self.packed_sample, self.packed_velocity = pack_latents(self.sample), pack_latents(self.velocity)
        self.packed_processed = pack_latents(case.latent_processed)

    def flow_step(self) -> torch.Tensor:
        return flow_blended_output(self.velocity, self.sample, FLOW_SIGMA, self.level, self.blend)

    def flow_step_packed(self) -> torch.Tensor:
        return flow_blended_output(self.packed_velocity, self.packed_sample, FLOW_SIGMA, self.level,
                                   self.blend, (SIZE, SIZE))

    def masks_packed(self) -> torch.Tensor:
        case = self.sixteen
        return latent_difference_masks(case.settings, case.nmask, case.latent_orig,
                                       unpack_latents(self.packed_processed, SIZE, SIZE))


def rows(device: str, budget_s: float, min_repeats: int, batches: Sequence[int] = BATCHES) -> list[Row]:
    found = []
    for batch in batches:
        cases = ChannelCases(batch, device)
        groups = {
            STEP: {BLEND_4: cases.four.stage1, BLEND_16: cases.sixteen.stage1, FLOW_16: cases.flow_step,
                   FLOW_PACKED: cases.flow_step_packed},
            MASKS: {MASKS_4: cases.four.difference_masks, MASKS_16: cases.sixteen.difference_masks,
                    MASKS_PACKED: cases.masks_packed},
        }
        for stage, calls in groups.items():
            timed = measure_together(calls, device, budget_s=budget_s, min_repeats=min_repeats)
            found += [Row(device, stage, name, SIZE, batch, t.median, t.best, t.repeats, report.MEASURED)
                      for name, t in timed.items()]
    return found


def _pick(found: Sequence[Row], device: str, stage: str) -> dict[int, dict[str, Row]]:
    by_batch: dict[int, dict[str, Row]] = {}
    for r in found:
        if r.device == device and r.stage == stage:
            by_batch.setdefault(r.batch, {})[r.method] = r
    return by_batch


def step_table(found: Sequence[Row], device: str) -> str:
    body = []
    for batch, m in sorted(_pick(found, device, STEP).items()):
        b4, b16, f16, fp = (m[k].median_s for k in METHODS[STEP])
        body.append([f"{SIZE}²", str(batch), report.format_seconds(b4), report.format_seconds(b16),
                     report.format_ratio(b16, b4), report.format_seconds(f16), report.format_seconds(fp),
                     report.format_ratio(fp, f16)])
    return report.table(["latent", "batch", "blend 4 ch", "blend 16 ch", "16 ÷ 4", "flow step 16 ch",
                         "flow step packed", "packed ÷ unpacked"], body)


def masks_table(found: Sequence[Row], device: str) -> str:
    body = []
    for batch, m in sorted(_pick(found, device, MASKS).items()):
        m4, m16, mp = (m[k].median_s for k in METHODS[MASKS])
        body.append([f"{SIZE}²", str(batch), report.format_seconds(m4), report.format_seconds(m16),
                     report.format_ratio(m16, m4), report.format_seconds(mp), report.format_ratio(mp, m16)])
    return report.table(["latent", "batch", "masks 4 ch", "masks 16 ch", "16 ÷ 4", "masks packed",
                         "packed ÷ 16 ch"], body)


def key_figures(found: Sequence[Row], device: str) -> list[str]:
    """One line per batch: the 16-channel costs as ratios to the 4-channel ones."""
    lines = []
    steps, masks = _pick(found, device, STEP), _pick(found, device, MASKS)
    for batch in sorted(set(steps) & set(masks)):
        s, m = steps[batch], masks[batch]
        lines.append(
            f"- 16 channels, latent {SIZE}² batch {batch} ({device}): blend "
            f"{report.format_seconds(s[BLEND_16].median_s)} = "
            f"{report.format_ratio(s[BLEND_16].median_s, s[BLEND_4].median_s)} the 4-channel "
            f"{report.format_seconds(s[BLEND_4].median_s)}; difference masks "
            f"{report.format_seconds(m[MASKS_16].median_s)} = "
            f"{report.format_ratio(m[MASKS_16].median_s, m[MASKS_4].median_s)} the 4-channel "
            f"{report.format_seconds(m[MASKS_4].median_s)}; Flux packed step "
            f"{report.format_seconds(s[FLOW_PACKED].median_s)} = "
            f"{report.format_ratio(s[FLOW_PACKED].median_s, s[FLOW_16].median_s)} the unpacked one")
    return lines
