"""The WebUI's mask blur without OpenCV, and the hard-edge check.

``tests/data/opencv_mask_blur.npz`` holds masks blurred by ``cv2.GaussianBlur`` (OpenCV 4.8.1, the
version the WebUI's requirements install) exactly as ``StableDiffusionProcessingImg2Img.init`` of
WebUI v1.10.1 calls it: a ``(2·int(2.5·x + 0.5) + 1, 1)`` kernel of σ = mask_blur_x, then a
``(1, 2·int(2.5·y + 0.5) + 1)`` one of σ = mask_blur_y. Keys: ``mask``/``noise`` (inputs) and
``NAME_X_Y`` (blurred by x and y).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib_soft_inpainting.integrations.workflow import blur_mask, is_hard_edged

GOLDEN = np.load(Path(__file__).parent / "data" / "opencv_mask_blur.npz")
CASES = [key for key in GOLDEN.files if key.count("_") == 2]


@pytest.mark.parametrize("key", CASES)
def test_blur_is_opencvs_to_the_grey_level(key):
    name, x, y = key.split("_")
    ours = np.asarray(blur_mask(Image.fromarray(GOLDEN[name]), int(x), int(y)))
    assert np.array_equal(ours, GOLDEN[key])


def test_float_gaussian_is_not_enough():
    """The oracle: a plain float Gaussian (no fixed point) differs from OpenCV, so the test above
    can tell an approximate blur from the WebUI's."""
    mask = GOLDEN["mask"].astype(np.float64)
    sigma = 4
    taps = 2 * int(2.5 * sigma + 0.5) + 1
    x = np.arange(taps) - taps // 2
    kernel = np.exp(-x * x / (2 * sigma * sigma))
    kernel /= kernel.sum()
    rows = np.pad(mask, ((0, 0), (taps // 2,) * 2), mode="reflect")
    once = np.floor(np.stack([rows[:, i:i + mask.shape[1]] for i in range(taps)], -1) @ kernel + 0.5)
    cols = np.pad(once, ((taps // 2,) * 2, (0, 0)), mode="reflect")
    twice = np.floor(np.stack([cols[i:i + mask.shape[0]] for i in range(taps)], -1) @ kernel + 0.5)
    assert np.abs(twice - GOLDEN["mask_4_4"]).max() <= 2  # close ...
    assert not np.array_equal(twice, GOLDEN["mask_4_4"])  # ... but not the WebUI's pixels


def test_no_blur_and_one_pixel_wide_masks():
    mask = Image.fromarray(GOLDEN["mask"])
    assert np.array_equal(np.asarray(blur_mask(mask, 0)), GOLDEN["mask"])
    column = Image.fromarray(GOLDEN["noise"][:, :1])
    assert np.array_equal(np.asarray(blur_mask(column, 8, 0)), GOLDEN["noise"][:, :1])


def test_hard_edges_are_told_from_grey_ones():
    hard = Image.fromarray(GOLDEN["mask"])
    assert is_hard_edged(hard)
    assert not is_hard_edged(blur_mask(hard, 4))
    assert is_hard_edged(Image.new("L", (8, 8), 0))  # nothing painted: nothing to blend either
