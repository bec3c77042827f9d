"""Living beside the WebUI's built-in soft-inpainting extension: exactly one of the two acts.

Both scripts are titled "Soft Inpainting". The API hands ``alwayson_scripts["soft inpainting"]``
to the first one (the built-in, which loads first), and the UI shows two accordions. For each job:
if the built-in is enabled, this extension takes over with the built-in's arguments (the same
seven, in the same order) and switches the built-in off for that job only, by rewriting its
enabled flag in the job's ``script_args`` copy. The console says so once per job.
"""

from __future__ import annotations

from typing import Any

HOW_TO_DISABLE = ("To keep one accordion, disable the built-in 'soft-inpainting' in Extensions > "
                  "Installed (or add it to disabled_extensions in config.json) and restart the WebUI.")


def builtin_scripts(p: Any, ours: Any) -> list[Any]:
    """Other always-on scripts of this job titled like ours (the built-in extension's)."""
    runner = getattr(p, "scripts", None)
    found = []
    for script in getattr(runner, "alwayson_scripts", None) or []:
        if script is ours or type(script) is type(ours):
            continue
        try:
            title = script.title()
        except Exception:
            continue
        if str(title).strip().lower() == ours.title().lower():
            found.append(script)
    return found


def _args_of(p: Any, script: Any) -> list[Any]:
    args = getattr(p, "script_args", None) or ()
    start, end = getattr(script, "args_from", None), getattr(script, "args_to", None)
    if start is None or end is None:
        return []
    return list(args[start:end])


def take_over_builtin(p: Any, ours: Any) -> str | None:
    """Resolve a job where the built-in may be enabled; returns the console message, if any.

    Runs in ``before_process``, before any script's ``process``. When the built-in is enabled, its
    enabled flag is turned off in this job's ``script_args`` so none of its hooks act; when ours is
    off, the built-in's seven arguments are copied into ours, so this extension acts with them.
    """
    for script in builtin_scripts(p, ours):
        builtin_args = _args_of(p, script)
        if not builtin_args or not _truthy(builtin_args[0]):
            continue
        args = list(p.script_args)
        args[script.args_from] = False
        ours_enabled = _truthy(args[ours.args_from]) if ours.args_to > ours.args_from else False
        if not ours_enabled:
            count = min(len(builtin_args), ours.args_to - ours.args_from)
            args[ours.args_from:ours.args_from + count] = builtin_args[:count]
        p.script_args = type(p.script_args)(args) if isinstance(p.script_args, tuple | list) else args
        which = "this extension's settings" if ours_enabled else "the built-in's settings"
        return (f"Soft inpainting: both this extension and the WebUI's built-in soft-inpainting were "
                f"asked to act on this job; this extension acts alone, with {which}, and the built-in "
                f"is skipped. {HOW_TO_DISABLE}")
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)
