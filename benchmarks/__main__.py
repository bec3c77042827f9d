"""Entry point of ``python -m benchmarks`` (run from the repository root)."""

from .cli import main

raise SystemExit(main())
