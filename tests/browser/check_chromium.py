"""Check javascript/soft_inpainting.js in a real headless Chromium, and take the README screenshot.

Chromium opens tests/browser/page.html, which loads a stand-in of the WebUI's page API, the real
extension script and markup shaped like gradio 3.41's; the page runs its checks and writes the
result into ``#soft-inpaint-check``, read back here from ``--dump-dom``. Console messages are read
from Chromium's log too: the extension logs nothing, so any message there is a failure.

    python tests/browser/check_chromium.py                  # the checks
    python tests/browser/check_chromium.py --screenshot docs/ui_screenshot.png

Chromium comes from the distribution (Debian: ``apt-get install chromium``); set
``SOFT_INPAINTING_CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# No network, no first-run work, no background services: the page is a local file.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
# The page's checks run 300 ms after load; virtual time lets Chromium skip the wait.
VIRTUAL_TIME_MS = 3000
TIMEOUT_S = 90
SCREENSHOT_SIZE = (800, 640)
_RESULT = re.compile(r'<pre id="soft-inpaint-check"[^>]*>(.*?)</pre>', re.S)
_CONSOLE = re.compile(r":CONSOLE[:(]")


@dataclass
class ScenarioResult:
    """What one page scenario reported, plus the console lines Chromium logged."""

    scenario: str
    ok: bool
    checks: list[dict] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.ok and not self.console and not self.page_errors and not self.problem

    def describe(self) -> str:
        lines = [f"scenario {self.scenario}: {'PASS' if self.passed else 'FAIL'}"]
        for check in self.checks:
            detail = "" if check["ok"] else f"  ({check['detail']})"
            lines.append(f"  {'ok ' if check['ok'] else 'BAD'} {check['name']}{detail}")
        lines += [f"  page error: {e}" for e in self.page_errors]
        lines += [f"  console: {c}" for c in self.console]
        if self.problem:
            lines.append(f"  problem: {self.problem}")
        return "\n".join(lines)


def find_chromium() -> str | None:
    """The Chromium binary to use, or None when none is installed."""
    chosen = os.environ.get("SOFT_INPAINTING_CHROMIUM")
    if chosen:
        return shutil.which(chosen) or (chosen if Path(chosen).is_file() else None)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Chromium once with a fresh, throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="soft-inpainting-chromium-") as profile:
        command = [binary, *BASE_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def page_url(scenario: str) -> str:
    return f"{PAGE.as_uri()}?scenario={scenario}"


def console_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if _CONSOLE.search(line)]


def parse_result(scenario: str, dom: str, stderr: str) -> ScenarioResult:
    """Read the page's verdict out of the dumped DOM."""
    console = console_lines(stderr)
    match = _RESULT.search(dom)
    if not match or not match.group(1).strip():
        return ScenarioResult(scenario, False, console=console,
                              problem="the page wrote no result (did the script load?)")
    data = json.loads(html.unescape(match.group(1)))
    return ScenarioResult(scenario, bool(data.get("ok")), list(data.get("checks", [])),
                          list(data.get("errors", [])), console)


def run_scenario(binary: str, scenario: str) -> ScenarioResult:
    done = run_chromium(binary, "--enable-logging=stderr", "--v=0",
                        f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", page_url(scenario))
    result = parse_result(scenario, done.stdout, done.stderr)
    if done.returncode != 0:
        result.problem = (result.problem + f" chromium exited with {done.returncode}").strip()
    return result


def take_screenshot(binary: str, out: Path, size: tuple[int, int] = SCREENSHOT_SIZE) -> Path:
    """The page with soft inpainting on and Mask blur 4: the hint and its button show."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    done = run_chromium(binary, f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                        f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page_url("screenshot"))
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium made no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the hint to this PNG")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("chromium not found: install it (Debian: apt-get install chromium) "
              "or set SOFT_INPAINTING_CHROMIUM")
        return 2
    results = [run_scenario(binary, scenario) for scenario in ("check", "empty")]
    for result in results:
        print(result.describe())
    if args.screenshot:
        print(f"screenshot: {take_screenshot(binary, args.screenshot)}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
