"""The command line: ``python -m lib_soft_inpainting run|demo``.

``run`` is tested with a tiny random pipeline saved with ``save_pretrained`` (nothing downloaded);
the error cases need no model and run without the diffusers extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.cli import (
    _auto_dtype,
    _is_sdxl_checkpoint,
    _local_model_kind,
    _settings_from,
    build_parser,
    checkpoint_kind,
    main,
)
from lib_soft_inpainting.integrations.infotext import parse_infotext, read_infotext, read_png_infotext
from lib_soft_inpainting.settings import PRESETS, SETTINGS, settings_from_infotext

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
    (["--cfg", "-1"], ["--cfg must be 0 or more"]),
    (["--cfg", "nan"], ["argument --cfg: must be a finite number, got 'nan'"]),
    (["--cfg", "inf"], ["argument --cfg: must be a finite number"]),
    (["--strength", "nan"], ["argument --strength: must be a finite number"]),
    (["--strength", "0.01"], ["--strength 0.01 with --steps 20 leaves no denoising step",
                              "use --strength 0.05 or more"]),
    (["--strength", "0.3", "--steps", "3"], ["use --strength 0.334 or more"]),
    (["--width", "30"], ["--width must be a positive multiple of 8, got 30"]),
    (["--schedule-bias", "nan"], ["--schedule-bias: Schedule bias", "from 0 to 8", "not finite"]),
    (["--mask-blend-power", "inf"], ["--schedule-bias: Schedule bias", "not finite"]),
    (["--difference-threshold", "abc"], ["--difference-threshold: Difference threshold", "not a number"]),
    (["--preset", "nope"], ["--preset: unknown soft inpainting preset 'nope'", "default, seamless-blend"]),
    (["--out", "no/such/folder/x.png"], ["output folder not found"]),
    (["--out", "x.gif"], ["--out: cannot write x.gif", ".png, .jpg, .jpeg, .webp"]),
    (["--out", "result"], ["--out: cannot write result", "no extension"]),
    (["--sampler", "nope"], ["invalid choice: 'nope'"]),
    (["--device", "banana"], ["--device 'banana' is not a device", "auto, cpu, cuda, cuda:N or mps"]),
    (["--device", "meta"], ["--device 'meta' is not a device to run a model on"]),
    (["--mask-blur", "65"], ["--mask-blur must be 0 to 64"]),
    (["--mask-blur", "-1"], ["--mask-blur must be 0 to 64"]),
    (["--seed", "-2"], ["--seed must be -1 (random) or 0 to 4294967295"]),
    (["--batch-size", "0"], ["--batch-size must be at least 1"]),
    (["--n-iter", "0"], ["--n-iter must be at least 1"]),
])
def test_invalid_options_are_named(capsys, pictures, extra, phrases):
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", "x/y", *extra)
    check_error(code, stderr, *phrases)


def test_missing_required_arguments(capsys):
    code, _, stderr = run_cli(capsys, "run", "image.png", "mask.png", "--model", "m")
    check_error(code, stderr, "--prompt")


def test_no_command_prints_the_commands_and_examples(capsys):
    code, _, stderr = run_cli(capsys)
    assert code == 2 and "Traceback" not in stderr
    assert "{run,demo}" in stderr and "run --help" in stderr and "demo --out" in stderr
    assert "soft-inpaint IMAGE" in stderr


def test_cuda_without_a_gpu_is_named(capsys, pictures, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", "x/y", "--device", "cuda")
    check_error(code, stderr, "--device cuda", "sees no CUDA GPU", "--device cpu")


def test_demo_out_naming_a_file_is_one_line(capsys, tmp_path):
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"")
    code, _, stderr = run_cli(capsys, "demo", "--out", existing)
    check_error(code, stderr, "--out is a file, not a folder")
    code, _, stderr = run_cli(capsys, "demo", "--out", existing / "below")
    check_error(code, stderr, f"{existing} is a file, not a folder")


def test_out_of_range_settings_are_clamped_with_a_warning(capsys, pictures):
    parser = build_parser()
    args = parser.parse_args(["demo", "--schedule-bias", "9"])
    assert float(args.mask_blend_power) == 9
    settings = _settings_from(args)
    assert settings.mask_blend_power == 8
    assert "warning:" in capsys.readouterr().err


def test_preset_sets_all_six_and_single_flags_override_it():
    parser = build_parser()
    seamless = PRESETS["Seamless blend"]
    for name in ("seamless-blend", "Seamless blend", "SEAMLESS_BLEND"):
        assert _settings_from(parser.parse_args(["demo", "--preset", name])) == seamless
    mixed = _settings_from(parser.parse_args(["demo", "--preset", "seamless-blend",
                                              "--difference-threshold", "3"]))
    assert mixed.composite_difference_threshold == 3
    assert mixed.mask_blend_power == seamless.mask_blend_power != SoftInpaintingSettings().mask_blend_power
    assert _settings_from(parser.parse_args(["demo"])) == SoftInpaintingSettings()


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
    usage = text.split("\n\n")[0]
    assert "--schedule-bias" in usage and "--mask-blend-power" not in usage  # the README's names


@pytest.mark.parametrize("suffix, kind", [(".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP"),
                                          (".PNG", "PNG")])
def test_the_extension_chooses_the_format_and_the_parameters_travel(capsys, pictures, model_dir, tmp_path,
                                                                   suffix, kind):
    out = tmp_path / f"result{suffix}"
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", model_dir, "--steps", 2, "--seed", 5, "--quiet", "--out", out)
    assert code == 0, stderr
    with Image.open(out) as picture:
        assert picture.format == kind
    params = parse_infotext(read_infotext(out)).params
    assert params["Seed"] == "5" and params["Soft inpainting enabled"] == "True"


def test_mask_blur_is_applied_recorded_and_a_hard_mask_is_warned_about(capsys, pictures, model_dir, tmp_path):
    hard = tmp_path / "hard.png"
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((8, 8, 23, 23), fill=255)
    mask.save(hard)
    common = ["run", pictures / "image.png", hard, "--prompt", "cat", "--model", model_dir, "--steps", 2,
              "--seed", 5, "--quiet"]
    code, _, stderr = run_cli(capsys, *common, "--mask-blur", 0, "--out", tmp_path / "a.png")
    assert code == 0, stderr
    assert "warning: the mask has no grey" in stderr and "--mask-blur 32" in stderr
    assert "Mask blur" not in read_infotext(tmp_path / "a.png")
    code, _, stderr = run_cli(capsys, *common, "--mask-blur", 16, "--out", tmp_path / "b.png")
    assert code == 0 and "warning" not in stderr
    assert parse_infotext(read_infotext(tmp_path / "b.png")).params["Mask blur"] == "16"
    # a blurred mask is not warned about, whatever the blur
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", model_dir, "--steps", 2, "--quiet", "--mask-blur", 0,
                              "--out", tmp_path / "c.png")
    assert code == 0 and "warning" not in stderr
    # the blur changes what is kept: the unblurred and blurred runs differ near the mask's edge
    unblurred, blurred = (np.asarray(Image.open(tmp_path / name)) for name in ("a.png", "b.png"))
    assert not np.array_equal(unblurred, blurred)


def test_batches_write_every_candidate_with_its_seed_and_a_labelled_sheet(capsys, pictures, model_dir,
                                                                         tmp_path):
    out = tmp_path / "cat.png"
    code, stdout, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt",
                                   "cat", "--model", model_dir, "--steps", 2, "--seed", 1234, "--quiet",
                                   "--batch-size", 2, "--n-iter", 2, "--out", out)
    assert code == 0, stderr
    paths = [tmp_path / f"cat-{i}.png" for i in range(1, 5)]
    seeds = [parse_infotext(read_infotext(p)).params["Seed"] for p in paths]
    assert seeds == ["1234", "1235", "1236", "1237"]
    positions = [parse_infotext(read_infotext(p)).params["Batch pos"] for p in paths]
    assert positions == ["0", "1", "0", "1"]
    assert not out.exists()
    candidates = [np.asarray(Image.open(p), dtype=np.int16) for p in paths]
    assert not np.array_equal(candidates[0], candidates[1])
    sheet = Image.open(tmp_path / "cat-sheet.png")
    assert sheet.width > 2 * SIZE and sheet.height > 2 * SIZE  # 2 x 2 cells with caption strips
    assert "seed 1237" in stdout and "contact sheet of 4" in stdout
    # a candidate is its seed's picture: seed 1236 alone makes candidate 3 again
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", model_dir, "--steps", 2, "--seed", 1236, "--quiet",
                              "--out", tmp_path / "alone.png")
    assert code == 0, stderr
    alone = np.asarray(Image.open(tmp_path / "alone.png"), dtype=np.int16)
    assert np.abs(alone - candidates[2]).max() <= 2


def test_a_hub_id_without_a_hub_says_so_quickly(capsys, pictures, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    args = ["run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat", "--model",
            "someone/not-downloaded", "--quiet", "--out", tmp_path / "o.png"]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    started = time.perf_counter()
    code, _, stderr = run_cli(capsys, *args)
    assert time.perf_counter() - started < 10
    check_error(code, stderr, "--model someone/not-downloaded: the Hugging Face hub cannot be reached",
                "127.0.0.1:9", "not in the local cache", "--model path/to/diffusers-folder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, stderr = run_cli(capsys, *args)
    check_error(code, stderr, "HF_HUB_OFFLINE is set", "pass a local model")


def test_without_a_hub_a_cached_hub_model_is_used(capsys, pictures, model_dir, tmp_path, monkeypatch):
    """The hub cache's layout (``models--OWNER--NAME``, ``refs/main``, ``snapshots/COMMIT``) as
    huggingface_hub writes it, filled with the tiny model."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--cached-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt",
                                   "cat", "--model", "someone/cached-model", "--steps", 2, "--quiet",
                                   "--out", out)
    assert code == 0, stderr
    assert parse_infotext(read_infotext(out)).params["Model"] == "someone/cached-model"


# ---------------------------------------------------------------- flow-matching models (SD3, Flux)


@pytest.fixture(scope="module")
def flow_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny SD3, Flux and Flux Fill pipelines saved as diffusers folders."""
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from tiny_pipelines import tiny_flux, tiny_sd3

    folders = {}
    for name, make in {"sd3": lambda: tiny_sd3("inpaint", t5=True), "flux": lambda: tiny_flux("inpaint"),
                       "flux-fill": lambda: tiny_flux("fill")}.items():
        folders[name] = tmp_path_factory.mktemp(f"tiny-{name}")
        make().save_pretrained(folders[name])
    return folders


@pytest.mark.parametrize("name, pipeline", [("sd3", "inpaint"), ("sd3", "img2img"), ("flux", "inpaint"),
                                            ("flux", "img2img"), ("flux-fill", "inpaint")])
def test_run_with_a_flow_model_folder(capsys, pictures, flow_models, tmp_path, name, pipeline):
    out = tmp_path / "result.png"
    code, stdout, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png",
                                   "--prompt", "a cat", "--model", flow_models[name], "--pipeline", pipeline,
                                   "--steps", 2, "--seed", 5, "--strength", 1.0, "--cfg", 1, "--quiet",
                                   "--out", out, *setting_flags(CHOSEN))
    assert code == 0, stderr
    assert f"wrote {out}" in stdout and "Traceback" not in stderr
    with Image.open(out) as picture:
        assert picture.size == (SIZE, SIZE)
        result = np.asarray(picture.convert("RGB")).astype(int)
    original = np.asarray(Image.open(pictures / "image.png").convert("RGB")).astype(int)
    assert np.abs(result - original)[12:20, 12:20].mean() > 2  # regenerated where the mask is white
    params = parse_infotext(read_png_infotext(out)).params
    # the model's own flow-matching Euler scheduler, no Karras schedule
    assert params["Sampler"] == "Euler" and "Schedule type" not in params
    assert settings_from_infotext(params) == (True, CHOSEN)


def test_flow_models_refuse_noise_level_samplers(capsys, pictures, flow_models):
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", flow_models["sd3"], "--steps", 2, "--sampler", "dpmpp_2m", "--quiet")
    check_error(code, stderr, "--sampler dpmpp_2m", "flow-matching model", "--sampler euler")


def test_fill_models_only_inpaint_and_take_no_negative_prompt(capsys, pictures, flow_models, tmp_path):
    args = ["run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat", "--steps", 2,
            "--model", flow_models["flux-fill"], "--out", tmp_path / "o.png", "--quiet"]
    code, _, stderr = run_cli(capsys, *args, "--pipeline", "img2img")
    check_error(code, stderr, "Flux Fill model, which only inpaints", "--pipeline inpaint")
    code, _, stderr = run_cli(capsys, *args, "--negative-prompt", "blurry")
    check_error(code, stderr, "--negative-prompt", "FluxFillPipeline takes no negative prompt")


def _header_only_safetensors(path: Path, tensors: dict[str, list[int]]) -> Path:
    header = json.dumps({key: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
                         for key, shape in tensors.items()}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.mark.parametrize("tensors, kind", [
    ({"model.diffusion_model.joint_blocks.0.x.attn.qkv.weight": [8, 8]}, "sd3"),
    ({"joint_blocks.0.x.attn.qkv.weight": [8, 8]}, "sd3"),
    ({"double_blocks.0.img_attn.qkv.weight": [9, 3], "img_in.weight": [3072, 64]}, "flux"),
    ({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": [9, 3],
      "model.diffusion_model.img_in.weight": [3072, 384]}, "flux-fill"),
    ({"conditioner.embedders.0.transformer.x": [1], "model.y": [1]}, "sdxl"),
    ({"cond_stage_model.transformer.x": [1], "model.y": [1]}, "sd"),
])
def test_single_files_are_told_apart_by_their_tensors(tmp_path, tensors, kind):
    # the file's name says nothing (and misleads): only the tensors count
    path = _header_only_safetensors(tmp_path / "flux-sdxl-sd3.safetensors", tensors)
    assert checkpoint_kind(path) == kind


def test_a_flow_single_file_that_cannot_be_loaded_is_one_line(capsys, pictures, tmp_path):
    path = _header_only_safetensors(tmp_path / "model.safetensors",
                                    {"joint_blocks.0.x.attn.qkv.weight": [8, 8]})
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", path, "--steps", 2, "--device", "cpu")
    check_error(code, stderr, "cannot load model", "model.safetensors")


def test_a_fill_model_gets_its_pipelines_guidance_by_default(capsys, pictures, flow_models, tmp_path):
    out = tmp_path / "fill.png"
    code, _, stderr = run_cli(capsys, "run", pictures / "image.png", pictures / "mask.png", "--prompt", "cat",
                              "--model", flow_models["flux-fill"], "--steps", 1, "--strength", 1, "--quiet",
                              "--out", out)
    assert code == 0, stderr
    params = parse_infotext(read_png_infotext(out)).params
    assert params["CFG scale"] == "30"  # FluxFillPipeline's own guidance_scale default


def test_auto_dtype_gives_flux_bfloat16_on_cuda(flow_models, tmp_path):
    import torch

    kinds = {name: _local_model_kind(str(folder)) for name, folder in flow_models.items()}
    assert kinds == {"sd3": "sd3", "flux": "flux", "flux-fill": "flux"}  # from model_index.json
    flux_file = _header_only_safetensors(tmp_path / "sd3.safetensors", {"double_blocks.0.x": [1]})
    assert _local_model_kind(str(flux_file)) == "flux"  # from the tensors, whatever the name says
    assert _local_model_kind("some/hub-id") is None
    assert _auto_dtype("cuda", "flux", True) == torch.bfloat16
    assert _auto_dtype("cuda", "flux", False) == torch.float16  # older GPUs: no bfloat16
    assert _auto_dtype("cuda", "sd3", True) == _auto_dtype("cuda", None, True) == torch.float16
    assert _auto_dtype("cpu", "flux", True) == _auto_dtype("mps", "sd", False) == torch.float32
