"""ComfyUI's entry point for this repository (a custom node pack as well as a WebUI extension).

ComfyUI imports this file when the repository sits in ``custom_nodes/``; nothing else does (the
WebUI reads ``scripts/``, ``pip install .`` packages ``lib_soft_inpainting`` only, pytest collects
``tests/``). It imports no ComfyUI module itself: with the V3 node schema present it exposes
``comfy_entrypoint``, otherwise the V1 ``NODE_CLASS_MAPPINGS`` (ComfyUI reads those first, so only
one of the two is defined).
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.append(_ROOT)  # so ``lib_soft_inpainting`` and ``soft_inpainting_comfy`` import by name

from soft_inpainting_comfy import nodes_v3 as _v3  # noqa: E402

if _v3.v3_available():
    comfy_entrypoint = _v3.comfy_entrypoint
    __all__ = ["comfy_entrypoint"]
else:
    from soft_inpainting_comfy.nodes_v1 import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
