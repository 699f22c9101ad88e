"""Pages for customers and agents: the embeddable chat widget, its demo page and the agent console."""

from __future__ import annotations

import hashlib
import html
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bot.api.deps import SettingsDep

router = APIRouter(tags=["pages"], include_in_schema=False)

# Our pages run only scripts and styles served by this origin: nothing inline, no CDN, no framing.
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the demo URL may carry a widget key
}
# The widget is embedded by other sites: cached briefly (and revalidated by ETag) so fixes reach them
# within minutes, and loadable by pages that set Cross-Origin-Embedder-Policy.
WIDGET_HEADERS = {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
KEY_PLACEHOLDER = b"__WIDGET_KEY__"
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "html": "text/html", "ico": "image/x-icon"}


def asset(relative: str) -> bytes:
    """A file under bot/web/ (read per request: small, and edits show up without a restart)."""
    return files("bot").joinpath("web", *relative.split("/")).read_bytes()


def serve(request: Request, body: bytes, kind: str, headers: dict[str, str]) -> Response:
    """`body` with its type, `headers`, an ETag, and 304 when the browser already has it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    merged = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", **headers, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=merged)
    return Response(body, media_type=MEDIA_TYPES[kind], headers=merged)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
def widget_js(request: Request) -> Response:
    """The embeddable chat widget: one plain script, no build step, no third-party requests."""
    return serve(request, asset("widget/widget.js"), "js", WIDGET_HEADERS)


@router.api_route("/demo", methods=["GET", "HEAD"])
def demo(
    request: Request, settings: SettingsDep, key: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """A fictional bank's page embedding the widget; `?key=` supplies a widget key when keys are on."""
    page = asset("widget/demo.html")
    # only a server with keys needs one, and it goes into an attribute, so it is HTML-escaped
    value = key if key and settings.api_keys.strip() else ""
    page = page.replace(KEY_PLACEHOLDER, html.escape(value, quote=True).encode())
    return serve(request, page, "html", {**PAGE_HEADERS, "Cache-Control": "no-store"})


@router.api_route("/demo/demo.css", methods=["GET", "HEAD"])
def demo_css(request: Request) -> Response:
    """The demo page's stylesheet."""
    return serve(request, asset("widget/demo.css"), "css", {})


@router.api_route("/agent", methods=["GET", "HEAD"])
def agent_page(request: Request) -> Response:
    """The agent console; public HTML that asks for an agent key and calls the API with it."""
    return serve(request, asset("agent/index.html"), "html", PAGE_HEADERS)


@router.api_route("/agent/console.js", methods=["GET", "HEAD"])
def agent_js(request: Request) -> Response:
    """The agent console's script."""
    return serve(request, asset("agent/console.js"), "js", {})


@router.api_route("/agent/console.css", methods=["GET", "HEAD"])
def agent_css(request: Request) -> Response:
    """The agent console's stylesheet."""
    return serve(request, asset("agent/console.css"), "css", {})


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
def favicon(request: Request) -> Response:
    """The pages' icon (browsers ask for it on every page; without it each visit logs a 404)."""
    return serve(request, asset("favicon.ico"), "ico", {"Cache-Control": "public, max-age=86400"})
