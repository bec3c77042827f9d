"""Infotext writing and reading (``integrations.infotext``): the WebUI's quoting, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lib_soft_inpainting import SoftInpaintingSettings
from lib_soft_inpainting.integrations.infotext import (
    format_infotext,
    parse_infotext,
    quote,
    read_png_infotext,
    save_png_with_infotext,
    unquote,
)
from lib_soft_inpainting.settings import settings_from_infotext


@pytest.mark.parametrize("value", [3, 7.5, True, "Euler a", "512x768", "DPM++ 2M"])
def test_plain_values_are_written_as_they_are(value):
    assert quote(value) is value


@pytest.mark.parametrize("value", ["a, b", "key: value", "two\nlines", 'say "hi", then go', "\\, backslash",
                                   '"quoted"'])
def test_values_that_would_break_the_list_are_json_strings(value):
    quoted = quote(value)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert json.loads(quoted) == value
    assert unquote(quoted) == value


def test_the_layout_is_the_webuis():
    params = {"Steps": 20, "Sampler": "Euler a", "Note": "x: y", "Skipped": None, "CFG scale": 7}
    text = format_infotext("a cat", "blurry, dark", params)
    assert text == ('a cat\nNegative prompt: blurry, dark\n'
                    'Steps: 20, Sampler: Euler a, Note: "x: y", CFG scale: 7')
    assert format_infotext("a cat", "", {"Steps": 20}) == "a cat\nSteps: 20"


def test_reading_a_webui_infotext():
    text = ("masterpiece, a cat\non a sofa\nNegative prompt: ugly, blurry\nSteps: 30, Sampler: DPM++ 2M, "
            'Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Lora hashes: "a: 1, b: 2", '
            "Soft inpainting enabled: True, Soft inpainting schedule bias: 0.2, Version: v1.10.1")
    parsed = parse_infotext(text)
    assert parsed.prompt == "masterpiece, a cat\non a sofa"
    assert parsed.negative_prompt == "ugly, blurry"
    assert parsed.params["Lora hashes"] == "a: 1, b: 2"
    assert parsed.params["Schedule type"] == "Karras"
    assert parsed.params["Soft inpainting schedule bias"] == "0.2"
    assert list(parsed.params)[-1] == "Version"


def test_a_prompt_alone_has_no_entries():
    parsed = parse_infotext("just a prompt: with a colon")
    assert parsed.prompt == "just a prompt: with a colon" and parsed.params == {}


KEYS = ["Steps", "Sampler", "Model", "Soft inpainting note", "Lora hashes", "Size-x/y"]
VALUES = st.one_of(st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=False, allow_infinity=False, width=32),
                   st.booleans(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
                   st.sampled_from(["a, b", 'x: "y"', "\\", '"', "line\nbreak", " , "]))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(VALUES, min_size=3, max_size=len(KEYS)),
       prompt=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
       negative=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30))
def test_round_trip(values, prompt, negative):
    prompt, negative = prompt.strip() or "p", negative.strip()
    # a prompt line that itself looks like the parameters line is ambiguous in the format
    if prompt.startswith("Negative prompt:") or len(parse_infotext(prompt).params):
        prompt = "p"
    if len(parse_infotext(negative).params):
        negative = "n"
    params = dict(zip(KEYS, values, strict=False))
    parsed = parse_infotext(format_infotext(prompt, negative, params))
    assert parsed.prompt == prompt
    assert parsed.negative_prompt == negative
    # JSON-quoted values come back whole; plain ones lose surrounding blanks, as in the WebUI
    expected = {key: str(value) if quote(value) is not value else str(value).strip()
                for key, value in params.items()}
    assert parsed.params == expected


def test_png_chunk_and_paste_back_of_the_six_settings(tmp_path):
    chosen = SoftInpaintingSettings(0.2, 0.05, 1, 0.35, 1.25, 1.25)
    text = format_infotext("a cat", "", {"Steps": 20, **chosen.infotext()})
    path = tmp_path / "out.png"
    save_png_with_infotext(Image.new("RGB", (8, 8)), path, text)
    assert read_png_infotext(path) == text
    enabled, settings = settings_from_infotext(parse_infotext(read_png_infotext(path)).params)
    assert enabled is True and settings == chosen
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert read_png_infotext(tmp_path / "plain.png") is None


def _user_comment_entry(tiff: bytes) -> tuple[int, bytes]:
    """(field type, value) of the Exif IFD's UserComment, read from the TIFF structure by hand
    (the oracle: piexif, which the WebUI reads with, takes the type from here)."""
    import struct

    assert tiff[:4] == b"II*\0"

    def entries(offset: int) -> dict[int, tuple[int, int, int]]:
        (count,) = struct.unpack_from("<H", tiff, offset)
        found = {}
        for i in range(count):
            tag, kind, n, value = struct.unpack_from("<HHII", tiff, offset + 2 + 12 * i)
            found[tag] = (kind, n, value)
        return found

    (first,) = struct.unpack_from("<I", tiff, 4)
    exif_ifd = entries(first)[0x8769][2]
    kind, n, at = entries(exif_ifd)[0x9286]
    return kind, tiff[at:at + n]


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_jpeg_and_webp_keep_the_infotext_in_the_exif_user_comment(tmp_path, suffix):
    from lib_soft_inpainting.integrations.infotext import read_infotext, save_with_infotext

    text = "a cat: 猫, still\nNegative prompt: dog\nSteps: 3, Seed: 1, Soft inpainting enabled: True"
    path = tmp_path / f"p{suffix}"
    save_with_infotext(Image.new("RGBA", (8, 8), (10, 20, 30, 128)), path, text)
    with Image.open(path) as picture:
        raw = picture.info["exif"]
    kind, value = _user_comment_entry(raw[6:] if raw.startswith(b"Exif\0\0") else raw)
    assert kind == 7  # UNDEFINED, as piexif writes it; BYTE would reach the WebUI as a tuple
    assert value == b"UNICODE\0" + text.encode("utf-16-be")
    assert read_infotext(path) == text


def test_other_extensions_are_refused_by_name(tmp_path):
    from lib_soft_inpainting.integrations.infotext import save_with_infotext

    with pytest.raises(ValueError, match=r"must end in \.png, \.jpg, \.jpeg, \.webp \(got \.bmp\)"):
        save_with_infotext(Image.new("RGB", (8, 8)), tmp_path / "p.bmp", "x")
