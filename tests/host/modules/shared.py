"""``modules.shared``: the options object (``opts``), ``OptionInfo`` and the command-line options."""

from __future__ import annotations

import argparse
from typing import Any


class OptionInfo:
    """One Settings-page option (``modules.options.OptionInfo``, re-exported by ``shared``)."""

    def __init__(self, default: Any = None, label: str = "", component: Any = None,
                 component_args: Any = None, onchange: Any = None, section: Any = None,
                 refresh: Any = None, comment_before: str = "", comment_after: str = "",
                 infotext: str | None = None, restrict_api: bool = False, category_id: str | None = None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.section = section
        self.comment_after = comment_after

    def info(self, info: str) -> OptionInfo:
        self.comment_after += f"<span class='info'>({info})</span>"
        return self


# The host options the extension reads, with the host's defaults.
HOST_DEFAULTS: dict[str, Any] = {
    "img2img_background_color": "#ffffff",
    "overlay_inpaint": True,
    "return_mask": False,
    "return_mask_composite": False,
    "inpainting_mask_weight": 1.0,
}


class Options:
    """Attribute access to option values; unknown names raise AttributeError as in the host."""

    def __init__(self) -> None:
        object.__setattr__(self, "data", dict(HOST_DEFAULTS))
        object.__setattr__(self, "data_labels", {})

    def add_option(self, key: str, info: OptionInfo) -> None:
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)

    def __getattr__(self, item: str) -> Any:
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key: str, value: Any) -> None:
        self.data[key] = value


opts = Options()
cmd_opts = argparse.Namespace(api_auth=None)
device = "cpu"
sd_model: Any = None


def reset() -> None:
    """Fresh options and command line (a test helper, not a host function)."""
    global opts, cmd_opts
    opts = Options()
    cmd_opts = argparse.Namespace(api_auth=None)
