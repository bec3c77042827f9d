"""``modules.errors``: the host reports an exception raised by a script hook and carries on."""

from __future__ import annotations

import traceback

reported: list[tuple[str, str]] = []


def report(message: str, *, exc_info: bool = False) -> None:
    """Print the message (and the traceback) like the host, and keep it for tests to inspect."""
    detail = traceback.format_exc() if exc_info else ""
    reported.append((message, detail))
    print(f"*** {message}\n{detail}")
