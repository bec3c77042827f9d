"""Check javascript/soft_inpainting.js in a real headless Chromium, and take the README screenshot.

Two pages, the same checks (tests/browser/checks.js), which drive the page as a user would:

* ``page.html`` (scenarios ``check`` and ``empty``): a local file with markup shaped like gradio 3.41's.
* the ``gradio`` scenario: gradio 3.41 itself serving the accordion that ``lib_soft_inpainting/ui.py``
  builds (tests/browser/gradio_page.py); here the checks also see what gradio received.

The page writes its verdict into ``#soft-inpaint-check``, read back here from ``--dump-dom``.
Console messages come from Chromium's log too: the extension logs nothing, so any message there is a
failure.

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
    # Every host name but the local server fails at once: nothing is looked up or fetched outside.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
# The checks start 300 ms after load and wait about 0.7 s in all; virtual time lets Chromium skip the
# waits (it does not advance while the page's files are still loading).
VIRTUAL_TIME_MS = 4000
TIMEOUT_S = 90
SCREENSHOT_SIZE = (800, 640)
SCENARIOS = ("check", "empty", "gradio")
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
    """Read the page's verdict out of the dumped DOM (the last such element: a page that inlines its
    scripts may quote the element's tag in their text)."""
    console = console_lines(stderr)
    texts = [text for text in _RESULT.findall(dom) if text.strip()]
    if not texts:
        return ScenarioResult(scenario, False, console=console,
                              problem="the page wrote no result (did the script load?)")
    try:
        data = json.loads(html.unescape(texts[-1]))
    except json.JSONDecodeError as error:
        return ScenarioResult(scenario, False, console=console, problem=f"unreadable result: {error}")
    return ScenarioResult(scenario, bool(data.get("ok")), list(data.get("checks", [])),
                          list(data.get("errors", [])), console)


def check_url(binary: str, scenario: str, url: str) -> ScenarioResult:
    """Open ``url``, let its checks run, and read their verdict and the console."""
    done = run_chromium(binary, "--enable-logging=stderr", "--v=0",
                        f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", url)
    result = parse_result(scenario, done.stdout, done.stderr)
    if done.returncode != 0:
        result.problem = (result.problem + f" chromium exited with {done.returncode}").strip()
    return result


def run_scenario(binary: str, scenario: str) -> ScenarioResult:
    """``check`` or ``empty`` on page.html; ``gradio`` on a real gradio page, served for the run."""
    if scenario != "gradio":
        return check_url(binary, scenario, page_url(scenario))
    import gradio_page

    with gradio_page.serve() as url:
        return check_url(binary, scenario, url)


def screenshot_url(url: str, binary: str, out: Path, size: tuple[int, int]) -> Path:
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    done = run_chromium(binary, f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                        f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium made no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return out


def take_screenshot(binary: str, out: Path, size: tuple[int, int] = SCREENSHOT_SIZE) -> Path:
    """The real gradio page in its dark theme, soft inpainting on and Mask blur 4: the hint shows."""
    import gradio_page

    with gradio_page.serve() as url:
        return screenshot_url(url + "?__theme=dark&scenario=screenshot", binary, out, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the hint to this PNG")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("chromium not found: install it (Debian: apt-get install chromium) "
              "or set SOFT_INPAINTING_CHROMIUM")
        return 2
    results = [run_scenario(binary, scenario) for scenario in SCENARIOS]
    for result in results:
        print(result.describe())
    if args.screenshot:
        print(f"screenshot: {take_screenshot(binary, args.screenshot)}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
