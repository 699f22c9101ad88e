"""Request guard (pure ASGI middleware): body size limit, JSON clean-up, URL checks and rate limits.

Runs before FastAPI parses anything, so hostile input is refused or made safe in one place:
- bodies over `max_body_bytes` get 413;
- control characters in URLs get 400 (a NUL in a path or query would reach the database);
- JSON bodies nested deeper than `MAX_DEPTH` get 422 (Python's parser would otherwise recurse deeply);
- strings in JSON bodies lose C0 control characters (tab and newlines kept) and lone UTF-16
  surrogates become U+FFFD, so every stored string is valid UTF-8 that PostgreSQL accepts;
- rate limits per API key and per client address give 429 with `Retry-After`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from bot.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_DEPTH = 32
_URL_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NESTING = re.compile(rb"[\[{]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid surrogates, so any left are lone


def clean_string(text: str) -> str:
    """Drop control characters (keeping tab and newlines) and replace lone surrogates with U+FFFD."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))


def clean_json(value: Any) -> Any:
    """`clean_string` applied to every string and key inside parsed JSON."""
    if isinstance(value, str):
        return clean_string(value)
    if isinstance(value, dict):
        return {clean_string(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def _too_deep(body: bytes) -> bool:
    """Whether brackets nest deeper than MAX_DEPTH (a cheap upper bound; strings may contain brackets)."""
    if len(_NESTING.findall(body)) <= MAX_DEPTH:
        return False
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest > MAX_DEPTH


async def _respond(
    send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RateLimits:
    """Moving-window limits per API key and per client address (`limits`; memory or Redis storage)."""

    def __init__(self, per_key: str, per_ip: str, storage_uri: str) -> None:
        try:
            self.per_key: RateLimitItem | None = parse(per_key) if per_key else None
            self.per_ip: RateLimitItem | None = parse(per_ip) if per_ip else None
        except ValueError:
            raise ConfigError(
                f"BOT_RATE_LIMIT_PER_KEY/PER_IP ('{per_key}', '{per_ip}') must look like '120/minute' "
                "(N per second, minute, hour or day) or be empty"
            ) from None
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        try:
            storage = storage_from_string(uri)
        except Exception as exc:  # limits raises ConfigurationError for unknown schemes and missing drivers
            raise ConfigError(
                f"BOT_RATE_LIMIT_STORAGE '{storage_uri}' cannot be used: {exc} "
                "(memory:// needs nothing; redis:// needs pip install 'bot[redis]')"
            ) from None
        assert isinstance(storage, Storage)
        self.limiter = MovingWindowRateLimiter(storage)

    async def retry_after(self, key_id: str | None, client: str) -> int | None:
        """Seconds to wait if this request is over a limit (it is then not counted), else None."""
        for item, who, scope in ((self.per_key, key_id, "key"), (self.per_ip, client, "ip")):
            if item is None or who is None:
                continue
            if not await self.limiter.hit(item, scope, who):
                stats = await self.limiter.get_window_stats(item, scope, who)
                return max(1, int(stats.reset_time - time.time()) + 1)
        return None


class RequestGuard:
    """ASGI middleware applying the checks described in the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, limits: RateLimits | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then hand it (with a cleaned body) to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if _URL_CONTROL.search(url):
            await _respond(send, 400, "invalid_url", "control characters are not allowed in the URL")
            return
        if self.limits is not None and scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers", []))
            _, _, token = headers.get(b"authorization", b"").partition(b" ")
            # a hash of the key itself (not the header), so "Bearer"/"bearer" share a bucket; never the key
            key_id = hashlib.sha256(token.strip()).hexdigest()[:16] if token.strip() else None
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = await self.limits.retry_after(key_id, client)
            if wait is not None:
                message = f"too many requests; retry in {wait} s"
                await _respond(send, 429, "rate_limited", message, {"Retry-After": str(wait)})
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if body and b"json" in content_type:
            if _too_deep(body):
                await _respond(send, 422, "invalid_request", f"JSON is nested deeper than {MAX_DEPTH} levels")
                return
            # invalid JSON passes through unchanged: FastAPI answers with a 422 that says so
            with contextlib.suppress(ValueError, RecursionError):
                body = json.dumps(clean_json(json.loads(body)), ensure_ascii=False).encode()
        await self.app(scope, _replay(body), send)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_big = f"request body is larger than {self.max_body_bytes} bytes"
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _respond(send, 413, "payload_too_large", too_big)
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _respond(send, 413, "payload_too_large", too_big)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
