"""The front end (javascript/soft_inpainting.js): in step with the settings table, its node tests,
and the check in a real headless Chromium. The last two skip when node + jsdom or Chromium are absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import check_chromium
import pytest
from PIL import Image

from lib_soft_inpainting.settings import ELEM_ID_PREFIX, ENABLED_LABEL, SETTINGS
from lib_soft_inpainting.ui import PRESET_LABEL, PRESETS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "javascript" / "soft_inpainting.js"
JS_TESTS = ROOT / "tests" / "js"
FIXTURE = JS_TESTS / "gradio_fixture.js"


def _js_string_pairs(text: str) -> dict[str, str]:
    """`'key': 'value'` pairs written on one line in a JS object literal."""
    return dict(re.findall(r"'([^']+)':\s*'([^']+)'", text))


def test_script_knows_every_control_of_the_settings_table() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    pairs = _js_string_pairs(text)
    assert f"'{ELEM_ID_PREFIX}enabled'" in text
    assert pairs[f"{ELEM_ID_PREFIX}preset"] == PRESET_LABEL
    for spec in SETTINGS:
        assert pairs.get(spec.elem_id) == spec.label, spec.name
    for label in [ENABLED_LABEL, PRESET_LABEL, *(spec.label for spec in SETTINGS)]:
        assert re.search(rf"^\s*'{re.escape(label)}': '", text, re.M), f"no hover hint for {label!r}"
    assert "Seamless blend" in PRESETS and re.search(r"^\s*'Seamless blend': '", text, re.M)


def test_seamless_blend_hint_states_the_preset_values() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    hint = text[text.index("'Seamless blend':"):]
    hint = hint[:hint.index("',\n")]
    preset = PRESETS["Seamless blend"]
    for value in (preset.mask_blend_power, preset.mask_blend_scale, preset.inpaint_detail_preservation,
                  preset.composite_difference_threshold, preset.composite_difference_contrast):
        assert f"{value:g}" in hint


def test_fixture_mirrors_the_settings_table() -> None:
    """The gradio-shaped test page shows the real labels, ranges, defaults and help texts."""
    text = FIXTURE.read_text(encoding="utf-8")
    flat = re.sub(r"'\s*\+\s*'", "", text)  # join the JS string concatenations
    for spec in SETTINGS:
        row = (f"['{spec.name}', '{spec.label}', {spec.minimum:g}, {spec.maximum:g}, {spec.step:g}, "
               f"{spec.default:g},")
        assert row in flat, row
        assert spec.help in flat, spec.name


def _node() -> str | None:
    return shutil.which("node")


@pytest.mark.skipif(_node() is None, reason="node is not installed")
@pytest.mark.skipif(not (JS_TESTS / "node_modules" / "jsdom").is_dir(),
                    reason="jsdom is not installed: run `npm ci` in tests/js")
def test_node_suite_passes() -> None:
    command = [_node(), "--test", "--test-reporter=tap", "tests/js/soft_inpainting.test.js"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert re.search(r"^# pass [1-9]\d*$", output, re.M), output[-2000:]
    assert re.search(r"^# fail 0$", output, re.M), output[-2000:]


CHROMIUM = check_chromium.find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@needs_chromium
@pytest.mark.parametrize("scenario", ["check", "empty"])
def test_real_chromium(scenario: str) -> None:
    result = check_chromium.run_scenario(CHROMIUM, scenario)
    assert result.passed, result.describe()
    assert result.checks, "the page ran no check"


@needs_chromium
def test_screenshot_is_made(tmp_path: Path) -> None:
    out = check_chromium.take_screenshot(CHROMIUM, tmp_path / "shot.png", size=(640, 480))
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (640, 480)
        low, high = image.convert("L").getextrema()
        assert high - low > 50, "a blank page"


def test_parse_result_reports_a_missing_verdict_and_console_lines() -> None:
    stderr = '[1:1:0101/000000.0:INFO:CONSOLE:12] "Uncaught TypeError: x", source: file:///page.html (12)\n'
    missing = check_chromium.parse_result("check", "<html><body></body></html>", stderr)
    assert not missing.passed
    assert "no result" in missing.problem
    assert missing.console == [stderr.strip()]
    dom = ('<pre id="soft-inpaint-check" hidden="">{"ok":true,"checks":[{"name":"a","ok":true,'
           '"detail":""}],"errors":[]}</pre>')
    assert check_chromium.parse_result("check", dom, "").passed
    assert not check_chromium.parse_result("check", dom, stderr).passed
