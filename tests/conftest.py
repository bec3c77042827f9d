"""Puts the WebUI stand-in (``tests/host``) first on ``sys.path``, so ``import modules`` finds it."""

from __future__ import annotations

import sys
from pathlib import Path

HOST = Path(__file__).resolve().parent / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))
