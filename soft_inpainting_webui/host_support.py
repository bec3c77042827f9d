"""Whether this WebUI has the hooks the extension needs, judged from what its ``modules.scripts``
provides (SPEC §11: the per-step mask blend and the post-sample hooks arrived in WebUI 1.8.0)."""

from __future__ import annotations

from typing import Any

REQUIRED = ("MaskBlendArgs", "PostSampleArgs", "PostProcessMaskOverlayArgs")


def missing_hooks(scripts_module: Any) -> list[str]:
    """The hook argument classes this host lacks (empty on WebUI 1.8.0 and later)."""
    missing = [name for name in REQUIRED if not hasattr(scripts_module, name)]
    base = getattr(scripts_module, "Script", None)
    if base is not None and not hasattr(base, "on_mask_blend"):
        missing.append("Script.on_mask_blend")
    return missing


def too_old_message(title: str, missing: list[str]) -> str:
    """The one console line for a host without the hooks."""
    return (f"[{title}] this WebUI has no {', '.join(missing)} (they arrived in WebUI 1.8.0); "
            f"soft inpainting stays off. Update the WebUI to 1.8.0 or later to use it.")
