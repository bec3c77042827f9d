"""Puts the WebUI stand-in (``tests/host``) first on ``sys.path``, so ``import modules`` finds it;
shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HOST = Path(__file__).resolve().parent / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors gain nothing from a second thread, and lose a lot when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def recording(monkeypatch):
    """The diffusers adapter with a stage-1 blend that notes every call's noise level."""
    from diffusers_helpers import RecordingBlend

    import lib_soft_inpainting.integrations.diffusers_pipeline as adapter

    monkeypatch.setattr(adapter, "SoftBlend", RecordingBlend)
    return RecordingBlend
