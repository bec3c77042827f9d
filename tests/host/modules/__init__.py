"""A stand-in of the AUTOMATIC1111 Stable Diffusion WebUI's ``modules`` package, v1.10.1.

Only the interfaces the extension uses are here, with the host's names, signatures and call order;
``tests/host/README.md`` lists them.
"""

WEBUI_VERSION = "v1.10.1"
