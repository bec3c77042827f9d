"""Benchmarks of the soft-inpainting core: ``python -m benchmarks --help``."""
