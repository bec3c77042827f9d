"""Soft inpainting in the inpainting passes other extensions run on a finished picture (SPEC §15).

ADetailer (25.x) runs, from the outer job's ``postprocess_image``, one inner img2img inpaint job
per detected face or hand. Its script runner is a shallow copy of the outer job's, filtered to the
always-on scripts whose file stem it lists (``soft_inpainting`` among them), and its
``script_args`` a copy of the outer job's, so this extension runs in the inner pass with the
settings the user chose for the outer job (on txt2img too, where the accordion exists for this).
The inner job is an ordinary inpainting job with its own mask and state; nothing here changes how
soft inpainting acts in it. This module adds what an inner pass cannot see by itself:

- **its outer job.** No hook says that a job runs inside another, and ADetailer links the inner
  job to the outer one by nothing but the call: the inner ``process_images`` runs inside the outer
  job's ``postprocess_image``. So the outer job is the nearest caller on the current thread's call
  stack holding a job (a local named ``p``, the name every WebUI-family host and ADetailer use)
  that is running: it went through this extension's ``before_process`` and has not reached its
  ``postprocess``. Both conditions matter: a caller may hold an earlier, finished job under the
  same name, and a job that failed never reaches ``postprocess`` but is no longer on the stack.
- **the final picture's infotext.** The inner job's infotext is discarded by ADetailer; only the
  outer job's ends up in the picture. The inner pass's entries go into the outer job's
  ``extra_generation_params`` as callables, which the host evaluates per image (A1111 1.8+ and the
  Forge family: ``value(**locals())`` in ``create_infotext``, ``None`` leaves the key out), so only
  the pictures an inner pass changed mention it. ADetailer copies no callable into its inner
  passes (``copy_extra_params``), so these entries never travel back in.
- **the mask blur note.** ADetailer's mask blur is 4 by default: too narrow an edge to be grey.
  The console says so once per outer job, naming ADetailer's setting.
- **X/Y/Z axes of the outer job.** An axis value lives on the outer job (``p.soft_inpainting_overrides``);
  ADetailer builds its inner job from scratch, so the inner pass reads the outer job's values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

RECORD_ATTRIBUTE = "soft_inpainting_inner_passes"
USED_IN_KEY = "Soft inpainting used in"
# Below this the mask's edge is too narrow to be grey (the img2img accordion's hint says the same).
MIN_MASK_BLUR = 16
SUGGESTED_MASK_BLUR = 32
MAX_FRAMES = 200


@dataclass
class InnerPasses:
    """On every job this extension sees: whether it is running, and what the inner passes run inside
    it have reported. ``owner`` is the job's ``id``: a copy of the job shares this record but is
    not the job (ADetailer hands ``copy(p)`` to ``postprocess`` in the middle of a job)."""

    owner: int
    running: bool = True
    outer: Any = None  # for an inner pass: the job whose picture it works on
    images: set[tuple[int, int]] = field(default_factory=set)  # (iteration, index in batch)
    names: list[str] = field(default_factory=list)
    blur_noted: bool = False

    def used_for(self, p: Any, index: Any, use_main_prompt: bool) -> bool:
        if use_main_prompt or index is None:
            return bool(self.images)
        return (int(getattr(p, "iteration", 0) or 0), int(index)) in self.images


def begin_job(p: Any) -> None:
    """Every job starts with an empty record (a fresh object: a copy of an earlier job shares none)."""
    setattr(p, RECORD_ATTRIBUTE, InnerPasses(owner=id(p)))


def end_job(p: Any) -> None:
    """The job has finished (its ``postprocess``): from now on it is nobody's outer job."""
    record = record_of(p)
    if record is not None and record.owner == id(p):
        record.running = False


def _running(p: Any) -> bool:
    record = record_of(p)
    return record is not None and record.running and record.owner == id(p)


def record_of(p: Any) -> InnerPasses | None:
    record = getattr(p, RECORD_ATTRIBUTE, None)
    return record if isinstance(record, InnerPasses) else None


def enclosing_job(p: Any, frame: Any = None) -> Any | None:
    """The job whose run called this one's (see the module's docstring), or None for a top-level job.

    ``frame``: where to start looking (default: the caller's frame).
    """
    frame = frame if frame is not None else sys._getframe(1)
    for _ in range(MAX_FRAMES):
        if frame is None:
            return None
        try:
            candidate = frame.f_locals.get("p")
        except Exception:  # a frame whose locals cannot be read is not a job's
            candidate = None
        if candidate is not None and candidate is not p and _running(candidate):
            return candidate
        frame = frame.f_back
    return None


def find_outer_job(p: Any) -> Any | None:
    """The outer job of ``p`` (None for a top-level job), kept on ``p``'s record for later hooks."""
    outer = enclosing_job(p, sys._getframe(1))
    record = record_of(p)
    if record is not None and record.owner == id(p):
        record.outer = outer
    return outer


def outer_job(p: Any) -> Any | None:
    """The outer job :func:`find_outer_job` found for ``p`` in its ``process``."""
    record = record_of(p)
    return record.outer if record is not None and record.owner == id(p) else None


def pass_name(p: Any) -> str:
    """Who runs this inner pass: ADetailer marks its inner jobs with ``_ad_inner``."""
    return "ADetailer" if getattr(p, "_ad_inner", False) else "inner inpainting pass"


def mask_blur(p: Any) -> float | None:
    """The inner job's mask blur (the smaller of A1111's x and y blurs when they differ)."""
    values = [getattr(p, name, None) for name in ("mask_blur_x", "mask_blur_y")]
    values = [v for v in values if isinstance(v, int | float)]
    if not values:
        value = getattr(p, "mask_blur", None)
        values = [value] if isinstance(value, int | float) else []
    return min(values) if values else None


def blur_note(p: Any, outer: Any) -> str | None:
    """The console line for an inner pass whose mask blur is too low, once per outer job.

    Called when the pass has sampled (``post_sample``): ADetailer also hands ``copy(p)`` of the
    outer job to ``process`` once per batch, which would otherwise look like a pass of its own.
    """
    record = record_of(outer)
    blur = mask_blur(p)
    if record is None or record.blur_noted or blur is None or blur >= MIN_MASK_BLUR:
        return None
    record.blur_noted = True
    if pass_name(p) == "ADetailer":
        who, setting = "ADetailer's inpainting pass", "ADetailer's \"Inpaint mask blur\" (ad_mask_blur)"
    else:
        who, setting = "An inner inpainting pass", "the mask blur of the extension that runs it"
    return (f"{who} blurs its mask by {blur:g} pixels: too narrow an edge for soft inpainting to "
            f"blend. Raise {setting} to {MIN_MASK_BLUR} or more ({SUGGESTED_MASK_BLUR} works well). "
            f"Said once per job.")


def _entry(record: InnerPasses, value: Any) -> Callable[..., Any]:
    def per_image(p: Any = None, index: Any = None, use_main_prompt: bool = False, **_: Any) -> Any:
        return value if record.used_for(p, index, use_main_prompt) else None

    return per_image


def report(p: Any, outer: Any, keys: Iterable[str]) -> None:
    """The inner job ``p`` used soft inpainting: its infotext entries (those of ``keys`` it holds)
    and where it was used go into the outer job's infotext, for the picture being post-processed.

    An entry the outer job already holds as a plain value (an img2img inpainting job that used soft
    inpainting itself, with the same settings) is left as it is. The outer job's dict is replaced,
    not changed in place: the X/Y/Z plot's jobs may share one.
    """
    record = record_of(outer)
    if record is None:
        return
    record.images.add((int(getattr(outer, "iteration", 0) or 0), int(getattr(outer, "batch_index", 0) or 0)))
    name = pass_name(p)
    if name not in record.names:
        record.names.append(name)
    inner = getattr(p, "extra_generation_params", None) or {}
    entries = {key: inner[key] for key in keys if key in inner and inner[key] is not None}
    entries[USED_IN_KEY] = "; ".join(record.names)
    params = dict(getattr(outer, "extra_generation_params", None) or {})
    for key, value in entries.items():
        if key in params and not callable(params[key]) and key != USED_IN_KEY:
            continue
        params[key] = _entry(record, value)
    outer.extra_generation_params = params
