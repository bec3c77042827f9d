"""Which per-step path this host needs, found once at start-up from the host's own sampler code.

The Forge family keeps A1111's script API but blends differently inside
``modules.sd_samplers_cfg_denoiser.CFGDenoiser.forward`` (SPEC §12):

- A1111 1.8+, reForge, Forge Classic since 2025-04: ``on_mask_blend`` after the model, the
  input-side blend only when ``mask_before_denoising`` — the current path, unchanged.
- Forge ``main`` and Neo: ``x = x * nmask + noisy_init * mask`` before the model, always, with fresh
  noise; grey regions then see two noises (std ≈ 0.71 σ at mask 0.5). The sampler is handed a
  neutral mask (nothing to blend with), the real one stays on the job for ``on_mask_blend``.
- Forge Classic before 2025-04: the same input-side blend and a hard blend after the model, with no
  per-step ``on_mask_blend``. The sampler is handed the neutral mask (both blends become the
  identity) and the soft blend is done from ``on_cfg_denoiser``/``on_cfg_after_cfg``.

The facts are read from the source of ``forward`` (its syntax tree), never from a version string.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import textwrap
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch


class StepPath(Enum):
    HOOK = "hook"  # A1111: on_mask_blend every step, nothing else hard-blends grey regions
    NEUTRAL_INPUT = "neutral_input"  # Forge main / Neo: neutralise the input-side blend
    CALLBACKS = "callbacks"  # old Forge Classic: blend from the CFG callbacks

    @property
    def neutralises_sampler_mask(self) -> bool:
        return self is not StepPath.HOOK


MESSAGES = {
    StepPath.HOOK: "per-step blend in on_mask_blend (the A1111 path)",
    StepPath.NEUTRAL_INPUT: ("per-step blend in on_mask_blend; this host's input-side hard blend is "
                             "neutralised for soft-inpainting jobs (Forge main / Neo path)"),
    StepPath.CALLBACKS: ("per-step blend from on_cfg_denoiser/on_cfg_after_cfg; this host does not call "
                         "on_mask_blend every step and its own hard blends are neutralised for "
                         "soft-inpainting jobs (older Forge Classic path)"),
}


@dataclass(frozen=True)
class SamplerFacts:
    """What the host's ``CFGDenoiser.forward`` does with the mask."""

    hook_every_step: bool
    input_blend_always: bool


def _mentions(node: ast.AST, attribute: str) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == attribute for n in ast.walk(node))


def _own_nodes(function: ast.FunctionDef):
    """The nodes of ``function`` outside any function defined inside it."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def read_forward(source: str) -> SamplerFacts:
    """The facts, from the source of a ``forward(self, x, sigma, …)`` method.

    ``input_blend_always``: an ``if`` on the mask that does not ask ``mask_before_denoising``
    reassigns the input ``x`` from an expression with ``nmask``. ``hook_every_step``: forward
    (or a function inside it) calls ``on_mask_blend``.
    """
    tree = ast.parse(textwrap.dedent(source))
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    params = [a.arg for a in function.args.args]
    x_name = params[1] if len(params) > 1 else "x"
    input_blend = False
    for node in _own_nodes(function):
        if not isinstance(node, ast.If) or not _mentions(node.test, "mask") \
                or _mentions(node.test, "mask_before_denoising"):
            continue
        for statement in node.body:
            if isinstance(statement, ast.Assign) and _mentions(statement.value, "nmask") and any(
                    isinstance(t, ast.Name) and t.id == x_name for t in statement.targets):
                input_blend = True
    return SamplerFacts(hook_every_step=_mentions(function, "on_mask_blend"), input_blend_always=input_blend)


def choose(facts: SamplerFacts) -> StepPath:
    if not facts.hook_every_step:
        return StepPath.CALLBACKS
    return StepPath.NEUTRAL_INPUT if facts.input_blend_always else StepPath.HOOK


DENOISER_MODULE = "modules.sd_samplers_cfg_denoiser"


def forward_source() -> str:
    """The source of the host's ``CFGDenoiser.forward``: from the loaded class when the host has
    imported it (what actually runs), else read from the module's file without importing it (the
    module's imports start the host's device set-up)."""
    module = sys.modules.get(DENOISER_MODULE)
    if module is not None:
        return inspect.getsource(module.CFGDenoiser.forward)
    spec = importlib.util.find_spec(DENOISER_MODULE)
    text = Path(spec.origin).read_text(encoding="utf-8")
    tree = ast.parse(text)
    denoiser = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CFGDenoiser")
    forward = next(n for n in denoiser.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    return ast.get_source_segment(text, forward)


def detect() -> tuple[StepPath, str]:
    """The path for this host and the console line that says so."""
    try:
        facts = read_forward(forward_source())
    except Exception as error:  # a host without a readable denoiser: keep the A1111 path
        return StepPath.HOOK, (f"[Soft Inpainting] {MESSAGES[StepPath.HOOK]} (could not read the host's "
                               f"sampler: {type(error).__name__})")
    path = choose(facts)
    return path, f"[Soft Inpainting] {MESSAGES[path]}"


# -- the neutral mask handed to the sampler -----------------------------------------------------------

@dataclass
class RealMasks:
    """The job's own latent masks while the sampler holds neutral ones."""

    mask: torch.Tensor
    nmask: torch.Tensor
    swapped: bool = True


def hand_sampler_neutral_masks(p: Any) -> RealMasks | None:
    """Before the sampler copies ``p.mask``/``p.nmask``: put "regenerate everywhere" in their place
    (``x·1 + y·0`` is ``x`` exactly), and return the real ones."""
    if getattr(p, "mask", None) is None or getattr(p, "nmask", None) is None:
        return None
    real = RealMasks(p.mask, p.nmask)
    p.mask, p.nmask = torch.zeros_like(p.mask), torch.ones_like(p.nmask)
    return real


def restore_masks(p: Any, real: RealMasks | None) -> None:
    """Put the real masks back on the job (for the final blend, ``post_sample`` and the overlays)."""
    if real is not None and real.swapped:
        p.mask, p.nmask = real.mask, real.nmask
        real.swapped = False


def already_real_sigma(denoiser: Any) -> bool:
    """DDIM/PLMS/UniPC in the Forge family turn the timestep into a sigma before any blend."""
    return bool(getattr(denoiser, "classic_ddim_eps_estimation", False))


class StepRelay:
    """Carries one step from ``on_cfg_denoiser`` (which knows the job and sigma) to
    ``on_cfg_after_cfg`` of the same step (which only gets the prediction)."""

    def __init__(self) -> None:
        self._pending: tuple[Any, Any, Any] | None = None

    def put(self, state: Any, sigma: Any, init_latent: Any) -> None:
        self._pending = (state, sigma, init_latent)

    def take(self) -> tuple[Any, Any, Any] | None:
        pending, self._pending = self._pending, None
        return pending
