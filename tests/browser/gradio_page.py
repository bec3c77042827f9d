"""A real gradio 3.41 page that mounts the soft inpainting accordion, for the Chromium check.

The page holds what javascript/soft_inpainting.js works with in the WebUI: img2img's Mask blur slider
(``img2img_mask_blur``) and the accordion built by ``lib_soft_inpainting.ui.build_controls`` through the
WebUI stand-in's ``InputAccordion`` (tests/host). A hidden Generate button takes [Mask blur, Soft inpainting]
as its inputs, as the WebUI's does, and a JS-only handler writes the values gradio would send into a
hidden probe, so the check sees what gradio itself received.

Scripts go into the page's head the way the WebUI puts them there (it wraps gradio's page template):
the error collector, the page-API stand-in (tests/js/webui_shim.js), the extension's script, the checks
(tests/browser/checks.js) and a starter that runs them once the UI has loaded. The page links nothing
outside this machine: gradio's one external script tag is dropped and the theme uses local fonts.

    python tests/browser/gradio_page.py        # serve it until Ctrl+C, to look at it in a browser
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
HOST = ROOT / "tests" / "host"
HEAD_SCRIPTS = (HERE / "collect_errors.js", ROOT / "tests" / "js" / "webui_shim.js",
                ROOT / "javascript" / "soft_inpainting.js", HERE / "checks.js")
# Run the checks once the WebUI's onUiLoaded fires, unless the page is opened for the screenshot.
STARTER = """
onUiLoaded(function() {
    if (new URLSearchParams(location.search).get('scenario') === 'screenshot') return;
    setTimeout(function() {
        softInpaintBrowserCheck.run({
            generate: '#soft_inpaint_probe_generate',
            probe: '#soft_inpaint_probe textarea',
        });
    }, 300);
});
"""
# gradio's page template loads one script from a CDN; the check's page must not reach outside.
EXTERNAL_SCRIPT = re.compile(rb'<script\s[^>]*src="https?://[^"]*"[^>]*>\s*</script>')


def _input_accordion_class() -> type:
    """The WebUI's ``InputAccordion`` as the project's WebUI stand-in (tests/host) has it: a hidden
    checkbox ``<id>-checkbox`` that is the input, and an ``input-accordion`` gr.Accordion ``<id>``."""
    if str(HOST) not in sys.path:  # tests/conftest.py does this under pytest
        sys.path.insert(0, str(HOST))
    from modules.ui_components import InputAccordion

    return InputAccordion


def build_demo(mask_blur: int = 4, enabled: bool = True) -> Any:
    """The Blocks app: hidden prompt (the WebUI's "UI loaded" marker), Mask blur, the accordion, the probe."""
    import gradio as gr

    from lib_soft_inpainting.settings import SoftInpaintingSettings
    from lib_soft_inpainting.ui import build_controls

    theme = gr.themes.Default(font=["DejaVu Sans", "sans-serif"], font_mono=["DejaVu Sans Mono", "monospace"])
    with gr.Blocks(analytics_enabled=False, theme=theme, title="soft inpainting: gradio check") as demo:
        gr.Textbox(label="Prompt", elem_id="txt2img_prompt", visible=False)
        blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=mask_blur,
                         elem_id="img2img_mask_blur")
        controls = build_controls(_input_accordion_class(), SoftInpaintingSettings(), enabled_default=enabled)
        probe = gr.Textbox(label="probe", elem_id="soft_inpaint_probe", visible=False)
        generate = gr.Button("Generate", elem_id="soft_inpaint_probe_generate", visible=False)
        generate.click(None, inputs=[blur, controls.enabled], outputs=[probe],
                       _js="(blur, enabled) => JSON.stringify([blur, enabled])")
    return demo


def head_html() -> str:
    """The script tags the page gets before ``</head>``, inlined so that no file route is needed."""
    parts = [f"<script>\n{path.read_text(encoding='utf-8')}\n</script>" for path in HEAD_SCRIPTS]
    parts.append(f"<script>{STARTER}</script>")
    return "\n".join(parts)


@contextlib.contextmanager
def _page_template_with(head: str) -> Iterator[None]:
    """Wrap gradio's page template as the WebUI does, adding ``head``. The template is rendered here
    (not through starlette's TemplateResponse, whose signature changed after gradio 3.41)."""
    from gradio import routes
    from starlette.responses import HTMLResponse

    templates = routes.templates
    had_own = "TemplateResponse" in vars(templates)
    original = vars(templates).get("TemplateResponse")

    def template_response(name: str, context: dict[str, Any], *args: Any, **kwargs: Any) -> HTMLResponse:
        body = templates.get_template(name).render(context).encode("utf-8")
        body = EXTERNAL_SCRIPT.sub(b"", body).replace(b"</head>", head.encode("utf-8") + b"\n</head>")
        return HTMLResponse(body)

    templates.TemplateResponse = template_response
    try:
        yield
    finally:
        if had_own:
            templates.TemplateResponse = original
        else:
            del templates.TemplateResponse


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(mask_blur: int = 4, enabled: bool = True) -> Iterator[str]:
    """Serve the page on 127.0.0.1 while the block runs; yields its URL."""
    with _page_template_with(head_html()):
        # gradio 3.41 uses a FastAPI hook that newer FastAPI deprecates, and prints its URL even when quiet.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", DeprecationWarning)
            demo = build_demo(mask_blur, enabled)
            _, url, _ = demo.launch(server_name="127.0.0.1", server_port=_free_port(),
                                    prevent_thread_lock=True, quiet=True, show_api=False)
        try:
            yield url
        finally:
            demo.close(verbose=False)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    with serve() as page_url:
        print(f"serving {page_url} (Ctrl+C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
