"""Command-line options of the soft inpainting extension.

The WebUI imports this file before it parses its command line and calls ``preload(parser)``; the
values land on ``shared.cmd_opts`` (``--soft-inpainting-device`` becomes
``cmd_opts.soft_inpainting_device``). Kept free of imports from the extension or the WebUI, because
it runs before either is importable.
"""

from __future__ import annotations

import argparse

DEVICE_OPTION = "--soft-inpainting-device"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEVICE_DEFAULT = "auto"
DEVICE_HELP = (
    "soft inpainting: where the post-sample stage (measuring how much each region changed and building "
    "the compositing masks) runs. auto: on the device that holds the latents (the GPU, usually); "
    "cpu: always on the CPU, to spare GPU memory; cuda: on the CUDA GPU (falls back to the CPU when "
    "none is available). The per-step blend always runs where the sampler runs."
)


def _has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in action.option_strings for action in parser._actions)


def preload(parser: argparse.ArgumentParser) -> None:
    """Add the extension's options to the WebUI's parser (once, even if called again)."""
    if _has_option(parser, DEVICE_OPTION):
        return
    parser.add_argument(
        DEVICE_OPTION,
        type=str.lower,
        choices=DEVICE_CHOICES,
        default=DEVICE_DEFAULT,
        help=DEVICE_HELP,
    )
