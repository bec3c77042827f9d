"""Adapters between the WebUI host and the pure core: options, X/Y/Z axes, the API route, and
living beside the built-in extension. Only the extension's script imports this package; it may
import the host's ``modules``, the core (``lib_soft_inpainting``) never does.
"""
