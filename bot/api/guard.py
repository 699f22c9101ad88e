"""Request guard (pure ASGI middleware): who is calling, body size limit, JSON clean-up, URL checks, rate limits.

Runs before FastAPI parses anything, so hostile input is refused or made safe in one place:
- the caller (API key, role, client address) is read once into a `Caller` (`bot.api.callers`) that the
  endpoints' role checks read too; two `Authorization` headers get 400 rather than one for each reader;
- bodies over `max_body_bytes` get 413;
- control characters in URLs get 400 (a NUL in a path or query would reach the database);
- every JSON body is cleaned, whatever its `Content-Type` says or how it is spelled (FastAPI parses a body
  without one as JSON, and reads the first of several): nested deeper than `MAX_DEPTH` gets 422, so does
  a non-finite number (`NaN`, `Infinity`, `1e999`), which no database column or JSON reader takes;
  strings lose C0 control characters (tab and newlines kept) and lone UTF-16 surrogates become U+FFFD,
  so every stored string is valid UTF-8 that PostgreSQL accepts;
- rate limits (`RateLimits`) give 429 with `Retry-After`;
- an unexpected error is logged as one line (its type and where), never with the request's text, and
  answered with a JSON 500.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from bot.api.access_log import redact_path
from bot.api.callers import Caller, TrustedProxies, identify
from bot.config import Settings
from bot.errors import ConfigError
from bot.store.db import url_secrets, url_without_password

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CALLER = "bot.caller"  # the scope key holding the request's `Caller`
LIMITS = "bot.limits"  # the scope key holding the app's `RateLimits` (None: no limits), for per-route work
# the scope key holding a JSON body as parsed and cleaned here: exactly what parsing the body the app
# receives gives, so an endpoint on the hot path (bot.api.chat's chat) need not parse it again
PARSED_JSON = "bot.json"
MAX_DEPTH = 32
_URL_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NESTING = re.compile(rb"[\[{]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid surrogates, so any left are lone
_POLL = re.compile(r"/v1/conversations/([^/]{1,64})/messages")


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


class NonFiniteNumber(ValueError):
    """A JSON number that is not a finite float (NaN, Infinity, or too large, like 1e999)."""


def _refuse_constant(name: str) -> float:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise NonFiniteNumber(text[:40])
    return number


def parse_json(body: bytes) -> Any:
    """`json.loads` that refuses non-finite numbers (raises NonFiniteNumber)."""
    return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)


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


@dataclass(frozen=True)
class Limit:
    item: RateLimitItem
    scope: str  # the counter's namespace in the storage
    what: str  # what is counted, for the 429 message


class RateLimits:
    """Moving-window limits (`limits`; memory or Redis storage), per client or per key, by role.

    - widget keys are public: every customer's browser holds the same one, so a bucket per widget key
      would let one client lock all customers out. Requests with a widget key, an unknown key or none
      are limited per client address (`per_ip`);
    - agent, analyst and admin keys are limited per key (`per_key`), not per address, so a team behind
      one office address does not share a bucket;
    - message polls, which widgets send every few seconds, have their own buckets, per client address
      (`polls_per_ip`) and per address and conversation (`polls_per_conversation`), so polling never
      uses up chat and chat never stops polling;
    - `POST /v1/route` is charged by work (characters) per key, see `charge_route`.
    """

    def __init__(self, settings: Settings) -> None:
        self.per_ip = self._limit(settings.rate_limit_per_ip, "ip", "requests from this address", "PER_IP")
        self.per_key = self._limit(settings.rate_limit_per_key, "key", "requests with this key", "PER_KEY")
        self.polls_per_ip = self._limit(
            settings.rate_limit_polls_per_ip, "poll-ip", "message polls from this address", "POLLS_PER_IP"
        )
        self.polls_per_conversation = self._limit(
            settings.rate_limit_polls_per_conversation,
            "poll-conversation",
            "message polls of this conversation from this address",
            "POLLS_PER_CONVERSATION",
        )
        self.route_chars = self._limit(
            settings.rate_limit_route_chars, "route-chars", "characters routed with this key", "ROUTE_CHARS"
        )
        uri = settings.rate_limit_storage
        uri = uri if uri.startswith("async+") else f"async+{uri}"
        try:
            storage = storage_from_string(uri)
        except Exception as exc:  # limits raises ConfigurationError for unknown schemes and missing drivers
            shown = url_without_password(settings.rate_limit_storage)
            problem = str(exc).replace(settings.rate_limit_storage, shown)
            for secret in url_secrets(settings.rate_limit_storage):  # the driver may quote any part
                problem = problem.replace(secret, "***")
            raise ConfigError(
                f"BOT_RATE_LIMIT_STORAGE '{shown}' cannot be used: {problem} "
                "(memory:// needs nothing; redis:// needs pip install 'bot[redis]')"
            ) from None
        assert isinstance(storage, Storage)
        self.limiter = MovingWindowRateLimiter(storage)

    @staticmethod
    def _limit(text: str, scope: str, what: str, name: str) -> Limit | None:
        if not text:
            return None
        try:
            return Limit(parse(text), scope, what)
        except ValueError:
            raise ConfigError(
                f"BOT_RATE_LIMIT_{name} '{text}' must look like '120/minute' "
                "(N per second, minute, hour or day) or be empty"
            ) from None

    async def _over(self, limit: Limit | None, *who: str, cost: int = 1) -> tuple[int, str] | None:
        if limit is None:
            return None
        if await self.limiter.hit(limit.item, limit.scope, *who, cost=cost):
            return None
        stats = await self.limiter.get_window_stats(limit.item, limit.scope, *who)
        return max(1, int(stats.reset_time - time.time()) + 1), f"{limit.what} ({limit.item})"

    async def retry_after(self, caller: Caller, method: str, path: str) -> tuple[int, str] | None:
        """(seconds to wait, which limit) if this request is over a limit (it is then not counted), else None."""
        private_key = caller.role not in (None, "widget") and caller.key_id is not None
        poll = _POLL.fullmatch(path) if method == "GET" else None
        if poll is not None:
            over = await self._over(self.polls_per_conversation, caller.client, poll.group(1))
            over = over or await self._over(self.polls_per_ip, caller.client)
        elif not private_key:
            over = await self._over(self.per_ip, caller.client)
        else:
            over = None
        if over is None and private_key and caller.key_id is not None:
            over = await self._over(self.per_key, caller.key_id)
        return over

    async def charge_route(self, caller: Caller, cost: int) -> tuple[int, str] | None:
        """Charge `cost` characters of batch routing to the caller's key (or address, without keys)."""
        return await self._over(self.route_chars, caller.key_id or caller.client, cost=cost)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits | None:
        """The limits, or None when every one of them is switched off."""
        configured = (
            settings.rate_limit_per_ip,
            settings.rate_limit_per_key,
            settings.rate_limit_polls_per_ip,
            settings.rate_limit_polls_per_conversation,
            settings.rate_limit_route_chars,
        )
        return cls(settings) if any(configured) else None


def _json_error(message: str) -> str:
    return f"{message}; numbers must be finite (no NaN, Infinity or values beyond about 1.8e308)"


class RequestGuard:
    """ASGI middleware applying the checks described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        limits: RateLimits | None,
        keys: dict[str, str] | None = None,
        names: dict[str, str] | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.keys = keys or {}
        self.names = names or {}
        self.proxies = proxies or TrustedProxies("")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then hand it (with a cleaned body) to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if _URL_CONTROL.search(url):
            await _respond(send, 400, "invalid_url", "control characters are not allowed in the URL")
            return
        authorization: list[bytes] = []
        forwarded_for: list[bytes] = []
        declared_length: bytes | None = None
        for name, value in scope.get("headers", ()):  # one pass; ASGI servers send names lower-cased
            name = name.lower()
            if name == b"authorization":
                authorization.append(value)
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"content-length":
                declared_length = value
        if len(authorization) > 1:
            await _respond(send, 400, "invalid_request", "send one Authorization header, not several")
            return
        peer, port = scope.get("client") or ("unknown", 0)
        client = self.proxies.client(peer, forwarded_for) if forwarded_for else peer
        if client != peer:  # the access log and the endpoints see the address the limits used
            scope["client"] = (client, port)
        caller = identify(authorization[0] if authorization else None, client, self.keys, self.names)
        scope[CALLER] = caller
        scope[LIMITS] = self.limits
        if self.limits is not None and scope["path"].startswith("/v1/"):
            over = await self.limits.retry_after(caller, scope["method"], scope["path"])
            if over is not None:
                wait, which = over
                message = f"too many {which}; retry in {wait} s"
                await _respond(send, 429, "rate_limited", message, {"Retry-After": str(wait)})
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self._call_app(scope, receive, send)
            return
        body = await self._read_body(declared_length, receive, send)
        if body is None:
            return
        if body:
            if _too_deep(body):
                await _respond(send, 422, "invalid_request", f"JSON is nested deeper than {MAX_DEPTH} levels")
                return
            try:
                raw = parse_json(body)
                parsed = clean_json(raw)
                if parsed != raw:  # re-encoded only when cleaning changed something: same value either way
                    body = json.dumps(parsed, ensure_ascii=False).encode()
                scope[PARSED_JSON] = parsed
            except NonFiniteNumber as exc:
                await _respond(send, 422, "invalid_request", _json_error(f"'{exc}' is not a finite number"))
                return
            except (ValueError, RecursionError):
                pass  # not JSON: passed on unchanged, FastAPI answers with a 422 that says so
        await self._call_app(scope, _replay(body), send)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; an unexpected error becomes a one-line log and a JSON 500 (if nothing was sent yet).

        The line names the error's type and where it was raised, not its message: database errors
        carry the statement and driver errors quote the offending value, i.e. the customer's text.
        """
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)[-3:]
            where = " < ".join(
                f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)
            )
            log.error(
                "%s %s failed: %s.%s at %s",
                scope["method"],
                redact_path(scope["path"]),
                exc.__class__.__module__,
                exc.__class__.__qualname__,
                where,
            )
            if not started:
                await _respond(
                    send, 500, "server_error", "the server could not handle this request; it was logged"
                )

    async def _read_body(self, declared: bytes | None, receive: Receive, send: Send) -> bytes | None:
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
