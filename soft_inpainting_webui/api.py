"""The discoverable API: a GET route describing the settings, their ranges and the args order."""

from __future__ import annotations

from typing import Any

from lib_soft_inpainting.settings import schema

ROUTE = "/soft-inpainting/v1/settings"


def register_routes(app: Any) -> None:
    """Add the route to the WebUI's FastAPI app (an ``on_app_started`` callback)."""
    app.add_api_route(ROUTE, schema, methods=["GET"], summary="Soft inpainting settings",
                      description="Names, types, ranges, defaults and positional order of the "
                                  "alwayson_scripts args of the Soft Inpainting script.")
