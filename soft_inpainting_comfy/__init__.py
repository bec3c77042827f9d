"""ComfyUI adapter: the soft-inpainting nodes (SPEC §13).

Only this package knows ComfyUI. It imports ComfyUI's modules lazily, inside the functions that run
in ComfyUI, so importing it (the repository's root ``__init__.py`` does) never pulls ComfyUI into
the WebUI, ``pip install .``, pytest or the command line.
"""
