"""Soft inpainting: a grey mask means opacity (SPEC §1). The public names of SPEC §8.

Other extensions import these; the WebUI script re-exports them. The core needs only torch,
numpy and PIL and never imports the WebUI.
"""

from .blend import get_modified_nmask, latent_blend
from .composite import latent_difference_masks, smootherstep, smoothstep
from .histogram import get_gaussian_kernel, weighted_histogram_filter
from .settings import SoftInpaintingSettings

__all__ = [
    "SoftInpaintingSettings",
    "get_gaussian_kernel",
    "get_modified_nmask",
    "latent_blend",
    "latent_difference_masks",
    "smootherstep",
    "smoothstep",
    "weighted_histogram_filter",
]

__version__ = "1.0.0"
