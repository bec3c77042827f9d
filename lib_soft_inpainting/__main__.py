"""``python -m lib_soft_inpainting run|demo`` (see :mod:`lib_soft_inpainting.cli`)."""

import sys

from .cli import main

sys.exit(main())
