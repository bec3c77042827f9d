"""preload.py (command-line options) and install.py (the start-up check that must never break start-up)."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, register: bool) -> types.ModuleType:
    """Load a top-level file of the extension by path. The WebUI loads preload.py exactly like this,
    without registering it in sys.modules; install.py runs as a script (registered as __main__)."""
    module_name = f"soft_inpainting_{name}"
    spec = importlib.util.spec_from_file_location(module_name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


preload = _load("preload", register=False)
install = _load("install", register=True)


# --- preload.py ----------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webui")
    parser.add_argument("--medvram", action="store_true")  # one of the host's own options
    preload.preload(parser)
    return parser


def test_device_option_defaults_to_auto() -> None:
    opts = _parser().parse_args([])
    assert opts.soft_inpainting_device == "auto"


@pytest.mark.parametrize(("given", "expected"), [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"),
                                                 ("CPU", "cpu"), ("Cuda", "cuda")])
def test_device_option_round_trip(given: str, expected: str) -> None:
    opts = _parser().parse_args(["--medvram", "--soft-inpainting-device", given])
    assert opts.soft_inpainting_device == expected
    assert opts.medvram is True


def test_device_option_rejects_unknown_devices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--soft-inpainting-device", "mps0"])
    assert "invalid choice" in capsys.readouterr().err


def test_device_option_is_documented_and_matches_the_glue() -> None:
    text = _parser().format_help()
    assert "--soft-inpainting-device {auto,cpu,cuda}" in text
    assert "post-sample" in text
    from soft_inpainting_webui.options import DEVICE_CHOICES

    assert tuple(preload.DEVICE_CHOICES) == tuple(DEVICE_CHOICES)


def test_preload_twice_adds_the_option_once() -> None:
    parser = _parser()
    preload.preload(parser)
    assert sum("--soft-inpainting-device" in a.option_strings for a in parser._actions) == 1
    assert parser.parse_args(["--soft-inpainting-device", "cpu"]).soft_inpainting_device == "cpu"


def test_webui_style_loading_of_preload_runs_without_the_extension_on_sys_path() -> None:
    """The WebUI calls preload() before anything of the extension is importable."""
    code = ("import argparse, importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('preload', {str(ROOT / 'preload.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "p = argparse.ArgumentParser(); m.preload(p)\n"
            "print(p.parse_args(['--soft-inpainting-device', 'cpu']).soft_inpainting_device)\n"
            "print(any(k.startswith(('lib_soft_inpainting', 'soft_inpainting_webui', 'torch')) "
            "for k in sys.modules))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cpu", "False"]


# --- install.py ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [("2.1.2+cu121", (2, 1, 2)), ("2.0.0a0", (2, 0, 0)),
                                                ("1.26.2", (1, 26, 2)), ("10.4.0", (10, 4, 0)), ("v2", (2,)),
                                                ("2.13.0.dev20250101", (2, 13, 0))])
def test_version_tuple(text: str, expected: tuple[int, ...]) -> None:
    assert install.version_tuple(text) == expected


def test_version_tuple_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        install.version_tuple("unknown")


def _fake_launch(installed: set[str] | None = None, raises: bool = False) -> types.ModuleType:
    launch = types.ModuleType("launch")
    launch.asked = []
    launch.pip_calls = []

    def is_installed(name: str) -> bool:
        launch.asked.append(name)
        if raises:
            raise RuntimeError("broken launch")
        return installed is None or name in installed

    def run_pip(*args: object, **kwargs: object) -> None:
        launch.pip_calls.append(args)

    launch.is_installed = is_installed
    launch.run_pip = run_pip
    return launch


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to open a connection is recorded and fails."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))
    return attempts


def test_all_present_gives_no_warning_and_uses_launch(no_network: list[object]) -> None:
    launch = _fake_launch()
    assert install.check(launch) == []
    assert launch.asked == ["torch", "numpy", "Pillow"]
    assert launch.pip_calls == [], "installs nothing"
    assert no_network == []


def test_missing_packages_are_warned_about(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    launch = _fake_launch(installed={"numpy"})
    monkeypatch.setitem(sys.modules, "launch", launch)
    assert install.main() == 0
    out = capsys.readouterr().out
    assert "[soft inpainting] warning: torch is not installed" in out
    assert "Pillow is not installed" in out
    assert "numpy" not in out
    assert launch.pip_calls == []


def test_old_torch_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "1.13.1+cu117" if name == "torch" else real_version(name))
    warnings = install.check(_fake_launch())
    assert len(warnings) == 1
    assert "torch 1.13.1+cu117 is older than 2.0" in warnings[0]


def test_unreadable_version_is_a_warning_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "unknown")
    warnings = install.check(_fake_launch())
    assert len(warnings) == 3
    assert all("could not read the version" in w for w in warnings)


def test_failing_imports_and_lookups_never_raise(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ImportError("no metadata here")

    monkeypatch.setattr(importlib.metadata, "version", broken)
    monkeypatch.setattr(importlib.util, "find_spec", broken)
    monkeypatch.setitem(sys.modules, "launch", None)  # `import launch` raises ImportError
    assert install.main() == 0
    out = capsys.readouterr().out
    assert out.count("[soft inpainting] warning:") == 3
    assert "is not installed" in out


def test_a_broken_launch_falls_back_to_looking_for_modules() -> None:
    launch = _fake_launch(raises=True)
    assert install.check(launch) == []  # torch, numpy and PIL are importable here
    assert launch.asked == ["torch", "numpy", "Pillow"]


def test_an_unexpected_error_inside_the_check_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def explode(requirement: object, launch: object = None) -> None:
        raise MemoryError("out of luck")

    monkeypatch.setattr(install, "check_requirement", explode)
    assert install.main() == 0
    assert capsys.readouterr().out.count("could not check") == 3


def _run_install(tmp_path: Path, launch_source: str) -> subprocess.CompletedProcess[str]:
    """Run install.py as the WebUI does: a separate Python, with the WebUI's folder on PYTHONPATH."""
    webui = tmp_path / "webui"
    webui.mkdir()
    (webui / "launch.py").write_text(launch_source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{webui}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, str(ROOT / "install.py")], cwd=webui, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_install_py_as_a_process_with_a_launch_module(tmp_path: Path) -> None:
    done = _run_install(tmp_path, "def is_installed(name):\n    return name != 'Pillow'\n"
                                  "def run_pip(*a, **k):\n    raise SystemExit('must not install')\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [line for line in done.stdout.strip().splitlines()
                                               if line.startswith("[soft inpainting] warning:")]
    assert "Pillow is not installed" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("launch_source", ["raise ImportError('no WebUI here')\n",
                                           "import sys\nsys.exit(3)\n",
                                           "raise RuntimeError('launch blew up')\n"])
def test_install_py_as_a_process_when_launch_fails_to_import(tmp_path: Path, launch_source: str) -> None:
    done = _run_install(tmp_path, launch_source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # everything it needs is installed here
    assert done.stderr == ""
