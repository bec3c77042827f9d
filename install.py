"""Start-up check, run by the WebUI as ``python install.py`` each time it starts.

The extension needs nothing beyond what the WebUI itself installs (PyTorch, NumPy, Pillow), so this
file installs nothing and never touches the network: it only looks at what is installed and prints
a clear warning for anything missing or too old. Every failure is caught and reported as a warning,
and the exit status is always 0, so it can never break or slow down the WebUI's start-up, offline
included.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

PREFIX = "[soft inpainting]"


@dataclass(frozen=True)
class Requirement:
    """A package the extension imports: distribution name, module name, oldest usable version."""

    distribution: str
    module: str
    minimum: tuple[int, ...]

    @property
    def minimum_text(self) -> str:
        return ".".join(str(part) for part in self.minimum)


# The same floors as pyproject.toml.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("torch", "torch", (2, 0)),
    Requirement("numpy", "numpy", (1, 23)),
    Requirement("Pillow", "PIL", (9, 5)),
)


def version_tuple(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: '2.1.2+cu121' -> (2, 1, 2), '2.0.0a0' -> (2, 0, 0)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def _installed_version(requirement: Requirement) -> str | None:
    try:
        return importlib.metadata.version(requirement.distribution)
    except Exception:
        return None


def _is_present(requirement: Requirement, launch: ModuleType | None) -> bool:
    """Ask the WebUI's own ``launch.is_installed`` when there is one, else look for the module."""
    checker: Callable[[str], Any] | None = getattr(launch, "is_installed", None) if launch else None
    if callable(checker):
        try:
            return bool(checker(requirement.distribution))
        except Exception:
            pass
    try:
        return importlib.util.find_spec(requirement.module) is not None
    except Exception:
        return False


def check_requirement(requirement: Requirement, launch: ModuleType | None = None) -> str | None:
    """A warning about one requirement, or None when it is fine."""
    if not _is_present(requirement, launch):
        name = requirement.distribution
        return (f"{name} is not installed in the WebUI's Python environment; soft inpainting will not load. "
                f"Repair the WebUI's environment (it installs {name} itself), "
                f"or install {name}>={requirement.minimum_text} into it.")
    version = _installed_version(requirement)
    if version is None:
        return None  # present but without metadata (a source build, say): nothing to compare
    try:
        found = version_tuple(version)
    except ValueError:
        return f"could not read the version of {requirement.distribution} ({version!r}); continuing."
    if found < requirement.minimum:
        return (f"{requirement.distribution} {version} is older than {requirement.minimum_text}, which soft "
                f"inpainting needs; update the WebUI (or install {requirement.distribution}>="
                f"{requirement.minimum_text} into its environment). The extension may fail until then.")
    return None


def check(launch: ModuleType | None = None) -> list[str]:
    """Warnings for every requirement that is missing or too old (empty when all is well)."""
    warnings: list[str] = []
    for requirement in REQUIREMENTS:
        try:
            warning = check_requirement(requirement, launch)
        except Exception as error:  # a broken environment must not stop the WebUI
            warning = f"could not check {requirement.distribution}: {error!r}; continuing."
        if warning:
            warnings.append(warning)
    return warnings


def _import_launch() -> ModuleType | None:
    """The WebUI's ``launch`` module, importable while the WebUI runs this file; None elsewhere."""
    try:
        import launch  # type: ignore[import-not-found]
    except (Exception, SystemExit):  # its import may even call sys.exit; none of that may escape
        return None
    return launch


def main() -> int:
    """Print the warnings; always returns 0."""
    try:
        for warning in check(_import_launch()):
            print(f"{PREFIX} warning: {warning}")
    except (Exception, SystemExit) as error:  # start-up goes on whatever happens here
        print(f"{PREFIX} warning: the start-up check failed ({error!r}); continuing.")
    return 0


if __name__ == "__main__":
    main()
