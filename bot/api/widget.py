"""Every page the server sends, one way: the chat widget and its demo page, the agent console, the analysts'
review, stats, versions and webhooks pages, `bot bootstrap`'s drafts page, and the icon.

Each is a file under bot/web/ sent by `page`: typed by its extension, with an ETag (304 when the browser
has it), `no-cache` unless said otherwise, and the headers of its kind below. The pages are public; the
data behind them needs a key.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bot.api.deps import SettingsDep
from bot.errors import NotFoundError

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
ICON_HEADERS = {"Cache-Control": "public, max-age=86400"}
KEY_PLACEHOLDER = b"__WIDGET_KEY__"
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "html": "text/html", "ico": "image/x-icon"}
# The analyst pages' scripts and styles (a fixed list: a path from the request never reaches the disk).
REVIEW_ASSETS = frozenset({"review.css", "common.js", "review.js", "stats.js"})


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


def page(request: Request, relative: str, headers: dict[str, str]) -> Response:
    """The file bot/web/`relative`, typed by its extension (see `serve`)."""
    return serve(request, asset(relative), relative.rsplit(".", 1)[-1], headers)


# URL -> (file under bot/web/, headers). HTML pages carry PAGE_HEADERS; the analyst pages' scripts and
# styles carry them too, since the review page changes the live router with one keystroke and nothing of
# it may be framed. /demo (a key goes into it) and /review/assets/NAME are routes of their own below.
PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "/widget.js": ("widget/widget.js", WIDGET_HEADERS),  # the embeddable chat widget: one plain script
    "/demo/demo.css": ("widget/demo.css", {}),
    "/agent": ("agent/index.html", PAGE_HEADERS),  # the agent console: asks for an agent key
    "/agent/console.js": ("agent/console.js", {}),
    "/agent/console.css": ("agent/console.css", {}),
    "/review": ("review/index.html", PAGE_HEADERS),  # the review queue: asks for an analyst key
    "/review/stats": ("review/stats.html", PAGE_HEADERS),  # routing statistics and discovered topics
    # stored intents versions, a routing diff of one (or a folder) against live, activation
    "/review/versions": ("review/versions.html", PAGE_HEADERS),
    "/review/versions/versions.js": ("review/versions.js", PAGE_HEADERS),
    "/review/versions/versions.css": ("review/versions.css", PAGE_HEADERS),
    # webhook subscriptions and failed deliveries, re-sent from the page (an admin key)
    "/review/webhooks": ("review/webhooks.html", PAGE_HEADERS),
    "/review/webhooks/webhooks.js": ("review/webhooks.js", PAGE_HEADERS),
    "/review/webhooks/webhooks.css": ("review/webhooks.css", PAGE_HEADERS),
    # `bot bootstrap`'s drafts, reviewed on the server (bot/api/bootstrap.py: its data, an admin key)
    "/review/bootstrap": ("bootstrap/served.html", PAGE_HEADERS),
    "/review/bootstrap/review.js": ("bootstrap/review.js", PAGE_HEADERS),
    "/review/bootstrap/served.js": ("bootstrap/served.js", PAGE_HEADERS),
    "/review/bootstrap/bootstrap.css": ("bootstrap/bootstrap.css", PAGE_HEADERS),
    # browsers ask for it on every page; without it each visit logs a 404
    "/favicon.ico": ("favicon.ico", ICON_HEADERS),
}


def _route(relative: str, headers: dict[str, str]) -> Callable[[Request], Response]:
    def send(request: Request) -> Response:
        return page(request, relative, headers)

    return send


for _path, (_relative, _headers) in PAGES.items():
    router.add_api_route(_path, _route(_relative, _headers), methods=["GET", "HEAD"])


@router.api_route("/demo", methods=["GET", "HEAD"])
def demo(
    request: Request, settings: SettingsDep, key: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """A fictional bank's page embedding the widget; `?key=` supplies a widget key when keys are on."""
    body = asset("widget/demo.html")
    # only a server with keys needs one, and it goes into an attribute, so it is HTML-escaped
    value = key if key and settings.api_keys.strip() else ""
    body = body.replace(KEY_PLACEHOLDER, html.escape(value, quote=True).encode())
    return serve(request, body, "html", {**PAGE_HEADERS, "Cache-Control": "no-store"})


@router.api_route("/review/assets/{name}", methods=["GET", "HEAD"])
def review_asset(request: Request, name: str) -> Response:
    """The analyst pages' shared scripts and styles."""
    if name not in REVIEW_ASSETS:
        raise NotFoundError(f"no asset '{name}'")
    return page(request, f"review/{name}", PAGE_HEADERS)
