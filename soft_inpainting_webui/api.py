"""The discoverable API: a GET route describing the settings, and the request check in front of
the host's generation routes, both behind the host's own API authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib_soft_inpainting.settings import SoftInpaintingSettings, schema
from soft_inpainting_webui import request_check

ROUTE = "/soft-inpainting/v1/settings"


def register_routes(app: Any, *, title: str, api_auth: bool,
                    defaults: Callable[[], SoftInpaintingSettings | None] = lambda: None,
                    log: Callable[[str], None] = print) -> None:
    """On the WebUI's FastAPI app (an ``on_app_started`` callback): the schema route and the check.

    The schema route carries the dependencies of the host's own ``/sdapi/v1/img2img`` route — with
    ``--api-auth`` that is the WebUI's ``Depends(api.auth)``, so the same credentials and the same
    401 apply. With ``--api-auth`` set but no host API route to borrow them from (the API is off),
    the schema route is not added rather than served without authentication.
    """
    dependencies = request_check.route_dependencies(app)
    if api_auth and not dependencies:
        log(f"[{title}] --api-auth is set but the WebUI API is not running; "
            f"{ROUTE} is not served")
    else:
        app.add_api_route(ROUTE, schema, methods=["GET"], dependencies=dependencies,
                          summary="Soft inpainting settings",
                          description="Names, types, ranges, defaults and positional order of the "
                                      "alwayson_scripts args of the Soft Inpainting script.")
    request_check.install(app, title=title, defaults=defaults, log=log)
