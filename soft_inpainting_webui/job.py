"""What one job computes, kept on that job (``p.soft_inpainting``), never on the shared Script.

It lives in an importable module rather than in ``scripts/soft_inpainting.py`` because the host
loads script files without registering them in ``sys.modules``, where a dataclass cannot be built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lib_soft_inpainting.noise_level import SIGMA_IS_NOISE_LEVEL, NoiseLevel
from lib_soft_inpainting.settings import SoftInpaintingSettings

JOB_ATTRIBUTE = "soft_inpainting"


@dataclass
class JobState:
    """The job's settings, then the masks and overlays of its current batch.

    ``timestep_as_noise_level``: the eighth argument (the noise level conversion, for flow models
    and timestep samplers alike; the name is the API's). ``noise_level``: how this job's model
    turns its sampler's sigma into a noise level, decided once when the job starts.
    """

    settings: SoftInpaintingSettings
    timestep_as_noise_level: bool = True
    noise_level: NoiseLevel = SIGMA_IS_NOISE_LEVEL
    masks: list[Any] = field(default_factory=list)
    overlays: list[Any] = field(default_factory=list)
    previews: list[Any] = field(default_factory=list)
    # Forge-family paths: the job's real latent masks while the sampler holds neutral ones.
    real_masks: Any = None
    # ``id`` of the job this state was made for (a copy of the job shares the attribute, not the id).
    owner: int | None = None


def job_state(p: Any) -> JobState | None:
    """This job's soft-inpainting state, or None when soft inpainting does not act on it."""
    state = getattr(p, JOB_ATTRIBUTE, None)
    return state if isinstance(state, JobState) else None


def start_job(p: Any, state: JobState | None) -> None:
    """Attach (or clear, with None) the state: a job never sees a previous job's results."""
    if state is not None:
        state.owner = id(p)
    setattr(p, JOB_ATTRIBUTE, state)
