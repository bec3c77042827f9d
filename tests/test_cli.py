"""The command line: ``python -m lib_soft_inpainting run|demo``.

``run`` is tested with a tiny random pipeline saved with ``save_pretrained`` (nothing downloaded);
the error cases need no model and run without the diffusers extra.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.cli import _is_sdxl_checkpoint, build_parser, main
from lib_soft_inpainting.integrations.infotext import parse_infotext, read_png_infotext
from lib_soft_inpainting.settings import SETTINGS, settings_from_infotext

SIZE = 32
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _library_verbosity(monkeypatch):
    """``run`` quiets diffusers and transformers through the environment; undo that afterwards."""
    monkeypatch.setenv("DIFFUSERS_VERBOSITY", "error")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pictures")
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    image = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.uint8)
    Image.fromarray(image).save(folder / "image.png")
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).ellipse((8, 8, 24, 24), fill=255)
    mask.filter(ImageFilter.GaussianBlur(3)).save(folder / "mask.png")
    mask.crop((0, 0, SIZE, SIZE // 2)).save(folder / "small_mask.png")
    (folder / "not_a_picture.png").write_text("this is text, not a PNG", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from tiny_pipelines import tiny_sd

    folder = tmp_path_factory.mktemp("tiny-sd")
    tiny_sd("inpaint").save_pretrained(folder)
    return folder


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


CHOSEN = SoftInpaintingSettings(mask_blend_power=0.2, mask_blend_scale=0.05, inpaint_detail_preservation=1.5,
                                composite_mask_influence=0.25, composite_difference_threshold=1.25,
                                composite_difference_contrast=1.75)


def setting_flags(settings: SoftInpaintingSettings) -> list[str]:
    """The six settings as flags, alternating python names and label names."""
    flags = []
    for i, spec in enumerate(SETTINGS):
        name = spec.name if i % 2 else spec.snake_label
        flags += ["--" + name.replace("_", "-"), str(getattr(settings, spec.name))]
    return flags


def test_run_writes_a_png_whose_infotext_pastes_back(capsys, pictures, model_dir, tmp_path):
    out = tmp_path / "result.png"
    code, stdout, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png",
                                   "--prompt", "a cat, sitting: still", "--negative-prompt", "blurry",
                                   "--model", model_dir, "--steps", 3, "--seed", 1234, "--strength", 1.0,
                                   "--cfg", 5.5, "--sampler", "euler", "--out", out, *setting_flags(CHOSEN))
    assert code == 0, stderr
    assert f"wrote {out}" in stdout
    assert "Traceback" not in stderr
    # the sampling progress bar (tqdm's, one tick per step)
    assert re.search(r"100%\|.*\| 3/3", stderr)

    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (SIZE, SIZE)
    infotext = read_png_infotext(out)
    parsed = parse_infotext(infotext)
    assert parsed.prompt == "a cat, sitting: still"
    assert parsed.negative_prompt == "blurry"
    params = parsed.params
    assert params["Steps"] == "3" and params["Seed"] == "1234" and params["CFG scale"] == "5.5"
    assert params["Sampler"] == "Euler" and params["Denoising strength"] == "1"
    assert params["Size"] == f"{SIZE}x{SIZE}" and params["Model"] == model_dir.name
    enabled, settings = settings_from_infotext(params)
    assert enabled is True
    assert settings == CHOSEN


def test_run_is_reproducible_with_a_seed_and_quiet_hides_the_bar(capsys, pictures, model_dir, tmp_path):
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png",
                                  "--prompt", "cat", "--model", model_dir, "--steps", 2, "--seed", 7,
                                  "--quiet", "--out", out)
        assert code == 0, stderr
        assert "it/s" not in stderr and "%|" not in stderr
    first, second = (np.asarray(Image.open(path)) for path in outs)
    assert np.array_equal(first, second)
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in read_png_infotext(outs[0])


def check_error(code: int, stderr: str, *phrases: str) -> None:
    assert code == 2
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lib_soft_inpainting: error: "), stderr
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize("image, mask, phrases", [
    ("missing.png", "mask.png", ["image not found", "missing.png"]),
    ("image.png", "missing.png", ["mask not found", "missing.png"]),
    ("not_a_picture.png", "mask.png", ["cannot read image", "not_a_picture.png"]),
    ("image.png", "not_a_picture.png", ["cannot read mask"]),
    ("image.png", "small_mask.png", ["the mask is 32x16 but the image is 32x32"]),
    (".", "mask.png", ["image is not a file"]),
])
def test_unusable_pictures_are_named(capsys, pictures, image, mask, phrases):
    code, _, stderr = run_cli(capsys, "run", pictures / image, pictures / mask, "--prompt", "cat",
                              "--model", "x/y")
    check_error(code, stderr, *phrases)


def test_models_that_cannot_be_loaded(capsys, pictures, model_dir, tmp_path):
    args = ["run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
            "--out", tmp_path / "o.png"]
    code, _, stderr = run_cli(capsys, *args, "--model", tmp_path / "no-such-model")
    check_error(code, stderr, "model not found", "no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = run_cli(capsys, *args, "--model", empty)
    check_error(code, stderr, "cannot load model", "empty", "model_index.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionInpaintPipeline"',
                                             encoding="utf-8")
    code, _, stderr = run_cli(capsys, *args, "--model", broken)
    check_error(code, stderr, "cannot load model", "broken")


@pytest.mark.parametrize("extra, phrases", [
    (["--strength", "1.5"], ["--strength must be in (0, 1], got 1.5"]),
    (["--steps", "0"], ["--steps must be at least 1"]),
    (["--cfg", "-1"], ["--cfg must be >= 0"]),
    (["--width", "30"], ["--width must be a positive multiple of 8, got 30"]),
    (["--schedule-bias", "nan"], ["Schedule bias", "not finite"]),
    (["--difference-threshold", "abc"], ["invalid float value: 'abc'"]),
    (["--out", "no/such/folder/x.png"], ["output folder not found"]),
    (["--sampler", "nope"], ["invalid choice: 'nope'"]),
])
def test_invalid_options_are_named(capsys, pictures, extra, phrases):
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", "x/y", *extra)
    check_error(code, stderr, *phrases)


def test_missing_required_arguments(capsys):
    code, _, stderr = run_cli(capsys, "run", "image.png", "mask.png", "--model", "m")
    check_error(code, stderr, "--prompt")
    code, _, stderr = run_cli(capsys)
    check_error(code, stderr, "command")


def test_out_of_range_settings_are_clamped_with_a_warning(capsys, pictures):
    parser = build_parser()
    args = parser.parse_args(["demo", "--schedule-bias", "9"])
    assert args.mask_blend_power == 9
    from lib_soft_inpainting.cli import _settings_from

    settings = _settings_from(args)
    assert settings.mask_blend_power == 8
    assert "warning:" in capsys.readouterr().err


def test_without_the_extra_run_says_what_to_install(capsys, pictures, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    monkeypatch.setitem(sys.modules, "lib_soft_inpainting.integrations.diffusers_pipeline", None)
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", "x/y", "--out", tmp_path / "o.png")
    check_error(code, stderr, "needs the diffusers extra", "soft-inpainting[diffusers]")


def test_sdxl_single_files_are_told_apart_by_their_header(tmp_path):
    def safetensors(path: Path, keys: list[str]) -> Path:
        header = "{" + ", ".join(f'"{k}": {{"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'
                                 for k in keys) + "}"
        data = header.encode()
        path.write_bytes(len(data).to_bytes(8, "little") + data)
        return path

    xl = safetensors(tmp_path / "xl.safetensors", ["conditioner.embedders.0.transformer.x", "model.y"])
    sd = safetensors(tmp_path / "sd.safetensors", ["cond_stage_model.transformer.x", "model.y"])
    assert _is_sdxl_checkpoint(xl) is True
    assert _is_sdxl_checkpoint(sd) is False
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 16)
    assert _is_sdxl_checkpoint(tmp_path / "junk.safetensors") is False
    assert _is_sdxl_checkpoint(tmp_path / "model.ckpt") is False


def test_python_dash_m_exits_non_zero_without_a_traceback(pictures):
    done = subprocess.run([sys.executable, "-m", "lib_soft_inpainting", "run", str(pictures / "missing.png"),
                           str(pictures / "mask.png"), "--prompt", "cat", "--model", "x/y"],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"lib_soft_inpainting: error: image not found: {pictures / 'missing.png'}"


@pytest.mark.parametrize("command", ["run", "demo"])
def test_help_lists_the_six_settings_from_the_table(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "250")  # no label split across lines, whatever the terminal
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for spec in SETTINGS:
        assert "--" + spec.name.replace("_", "-") in text
        assert spec.label in text
