"""The front end (javascript/soft_inpainting.js): in step with the settings table, its node tests,
and the checks in a real headless Chromium, on gradio-shaped markup and on gradio 3.41 itself.

The node tests skip when node or jsdom is missing (``cd tests/js && npm ci`` installs jsdom), the
Chromium checks when no Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import check_chromium
import pytest
from PIL import Image

from lib_soft_inpainting.settings import ELEM_ID_PREFIX, ENABLED_LABEL, SETTINGS, TIMESTEP_LABEL
from lib_soft_inpainting.ui import PRESET_LABEL, PRESETS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "javascript" / "soft_inpainting.js"
JS_TESTS = ROOT / "tests" / "js"
FIXTURE = JS_TESTS / "gradio_fixture.js"
SCREENSHOT = ROOT / "docs" / "ui_screenshot.png"
# Every control the accordion holds, by element id, with its label.
CONTROLS = {
    f"{ELEM_ID_PREFIX}preset": PRESET_LABEL,
    **{spec.elem_id: spec.label for spec in SETTINGS},
    f"{ELEM_ID_PREFIX}timestep_as_noise_level": TIMESTEP_LABEL,
}


def _js_string_pairs(text: str) -> dict[str, str]:
    """`'key': 'value'` pairs of a JS object literal (the value may start on the next line)."""
    return dict(re.findall(r"'([^']+)':\s*'([^']+)'", text))


def test_script_has_a_hover_hint_for_every_control() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    pairs = _js_string_pairs(text)
    assert f"'{ELEM_ID_PREFIX}enabled'" in text
    for elem_id, label in CONTROLS.items():
        assert pairs.get(elem_id) == label, elem_id
    for label in [ENABLED_LABEL, *CONTROLS.values()]:
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
    assert f"var TIMESTEP_LABEL = '{TIMESTEP_LABEL}';" in flat
    assert f'id="{ELEM_ID_PREFIX}timestep_as_noise_level"' in flat


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
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")


@needs_chromium
@pytest.mark.parametrize("scenario", check_chromium.SCENARIOS)
def test_real_chromium(scenario: str) -> None:
    """``check``: gradio-shaped markup; ``empty``: a page without our controls; ``gradio``: gradio 3.41
    serving the accordion built by lib_soft_inpainting/ui.py."""
    result = check_chromium.run_scenario(CHROMIUM, scenario)
    assert result.passed, result.describe()
    assert result.checks, "the page ran no check"
    if scenario == "gradio":
        names = {check["name"] for check in result.checks}
        assert {"gradio took Mask blur 32", "gradio took soft inpainting off"} <= names


@needs_chromium
def test_screenshot_is_made(tmp_path: Path) -> None:
    out = check_chromium.take_screenshot(CHROMIUM, tmp_path / "shot.png", size=(640, 480))
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (640, 480)
        low, high = image.convert("L").getextrema()
        assert high - low > 50, "a blank page"
        # The hint's accent border (gradio's orange) is on the picture.
        pixels = image.convert("RGB").getdata()
        assert any(r > 200 and 90 < g < 160 and b < 80 for r, g, b in pixels), "no hint on the picture"


def test_readme_screenshot_is_there() -> None:
    with Image.open(SCREENSHOT) as image:
        assert image.format == "PNG"
        assert image.size == check_chromium.SCREENSHOT_SIZE


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
    quoted = '<script>// writes into <pre id="soft-inpaint-check"> later</pre></script>'
    assert check_chromium.parse_result("gradio", quoted + dom, "").passed, "the last element counts"
    broken = check_chromium.parse_result("check", '<pre id="soft-inpaint-check">{"ok": tr</pre>', "")
    assert not broken.passed and "unreadable" in broken.problem
