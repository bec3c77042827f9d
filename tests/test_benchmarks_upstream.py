"""``benchmarks.upstream`` against stand-ins of the built-in's script (the real one is not in this
repository): it loads a script by path against the WebUI stand-in, passes when the results agree,
and fails when one of them does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import upstream

FAKE_UPSTREAM = '''
import modules.scripts as scripts  # the built-in imports the host like this
from lib_soft_inpainting import (SoftInpaintingSettings, get_gaussian_kernel, get_modified_nmask,
                                 weighted_histogram_filter, pictures)
from lib_soft_inpainting import latent_blend as _latent_blend

def latent_blend(settings, a, b, t):
    return _latent_blend(settings, a, b, t) * SCALE

def apply_adaptive_masks(settings, nmask, latent_orig, latent_processed, overlay_images, width, height,
                         paste_to):
    return pictures.adaptive_composite(settings, nmask, latent_orig, latent_processed, overlay_images,
                                       width, height, paste_to).masks
'''


def _script(tmp_path: Path, scale: float) -> Path:
    path = tmp_path / "soft_inpainting.py"
    path.write_text(f"SCALE = {scale!r}\n" + FAKE_UPSTREAM, encoding="utf-8")
    return path


@pytest.mark.parametrize(("scale", "status"), [(1.0, 0), (1.001, 1)])
def test_agreement_is_checked_against_the_given_script(tmp_path, capsys, scale, status) -> None:
    code = upstream.main([str(_script(tmp_path, scale)), "--size", "8", "--cases", "4", "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == status
    assert ("EXCEEDED" in out) == bool(status)
    assert "latent_blend" in out and "faster" in out


def test_the_main_benchmark_times_the_built_in_in_the_same_run(tmp_path, capsys) -> None:
    from benchmarks import cli

    code = cli.main(["--sizes", "8", "--batches", "1", "--reference-max", "0", "--budget", "0",
                     "--min-repeats", "1", "--no-memory", "--no-plot",
                     "--upstream", str(_script(tmp_path, 1.0)),
                     "--upstream-size", "8", "--upstream-repeats", "1", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Against the built-in extension's own code (soft_inpainting.py), latent 8²" in out
    lines = [line for line in out.splitlines() if line.startswith("- difference masks (the filter")]
    assert len(lines) == 1 and lines[0].endswith("faster") and "target" not in lines[0]
    assert (tmp_path / "out" / "built_in.json").exists()
