"""Stand-in of ComfyUI's ``comfy`` package (v0.3.64 interfaces; see ../README.md)."""

HOST = {"version": "0.3.64"}


def set_host_version(version: str) -> None:
    """ "0.3.64" (V3 schema, PREDICT_NOISE wrappers) or "0.3.40" (neither)."""
    HOST["version"] = version


def has_predict_noise() -> bool:
    return HOST["version"] != "0.3.40"
