"""Dependencies handed to endpoints: the loaded engine, the database, the chat service, and API-key roles.

They are `async def` on purpose: none does I/O, and FastAPI runs a plain `def` dependency in a worker
thread, a thread hop per dependency per request that cost a third of the event loop under load.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Set
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine as Database

from bot import names
from bot.api.callers import Caller, identify
from bot.api.guard import CALLER
from bot.chat.pipeline import ChatPipeline
from bot.chat.service import ChatService
from bot.config import Settings
from bot.errors import InvalidInputError
from bot.routing.engine import Engine
from bot.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer KEY")


def runtime_of(request: Request) -> Runtime:
    """The process's `Runtime` (bot.runtime), the one object the app keeps in its state."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    return runtime_of(request).settings


def ready_runtime(request: Request) -> Runtime:
    """The runtime once its folder is loaded; until then 503 with Retry-After (`bot serve` listens while
    it loads, so that liveness probes pass: /readyz tells when routing is ready)."""
    runtime = runtime_of(request)
    if not runtime.ready:
        reason = runtime.load_error or "the router is loading its intents"
        raise HTTPException(503, f"not ready: {reason}; retry shortly", headers={"Retry-After": "2"})
    return runtime


async def get_engine(request: Request) -> Engine:
    """The routing engine loaded at start-up."""
    return ready_runtime(request).engine


async def get_database(request: Request) -> Database:
    """The SQLAlchemy engine of the conversation store."""
    return runtime_of(request).database


async def get_service(request: Request) -> ChatService:
    """The chat service joining engine and store."""
    return ready_runtime(request).service


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ServiceDep = Annotated[ChatService, Depends(get_service)]


async def get_pipeline(request: Request) -> ChatPipeline:
    """The batched chat path (routing and writing threads) started with the app."""
    return ready_runtime(request).pipeline


PipelineDep = Annotated[ChatPipeline, Depends(get_pipeline)]


def caller_of(request: Request) -> Caller:
    """The request's caller as the guard read it (one parse of the credentials for limits and roles)."""
    caller = request.scope.get(CALLER)
    if isinstance(caller, Caller):
        return caller
    # an app mounted without the guard (never by create_app): read the one header the same way
    runtime = runtime_of(request)
    host = request.client.host if request.client is not None else "unknown"
    return identify(
        request.headers.get("authorization", "").encode("latin-1"), host, runtime.keys, runtime.key_names
    )


async def key_owner(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    """The person the presented key belongs to (`agent@NAME:KEY` in BOT_API_KEYS), or None.

    A key without an owner (a shared agent key, an admin key) may name any agent in a body's `agent`
    field that is a name (bot.names: 422 otherwise) and does not look like the name of a person who has a
    key of their own ('ANN', 'Anń', full-width or Cyrillic look-alikes of 'ann': 403). The body is
    FastAPI's own parsed copy (read once and cached on the request), so this costs a dictionary lookup.
    """
    owner = caller_of(request).owner
    if owner is None and request.method in ("POST", "PUT", "PATCH"):
        try:
            body = await request.json()
        except ValueError:  # not JSON: the endpoint's own validation says so
            body = None
        claimed = body.get("agent") if isinstance(body, dict) else None
        if isinstance(claimed, str):
            _refuse_posing(clean_agent(claimed), runtime_of(request).key_names.values())
    return owner


def _refuse_posing(claimed: str, people: Iterable[str]) -> None:
    """403 if `claimed` looks like (same skeleton as) the name of a person with a key of their own."""
    alike = next((name for name in people if _fold(name) == _fold(claimed)), None)
    if alike is not None:
        raise HTTPException(
            403,
            f"agent '{claimed}' is, or looks like, '{alike}', who has an API key of their own "
            f"(agent@NAME:KEY); only that key may act as '{alike}'",
        )


KeyOwnerDep = Annotated[str | None, Depends(key_owner)]


def _fold(name: str) -> str:
    """A name as compared for ownership: its look-alike skeleton (bot.names: 'Ann ', 'ANN', 'Anń', a
    full-width or Cyrillic 'ann' are one person)."""
    return names.skeleton(name)


def clean_agent(claimed: str) -> str:
    """The `agent` a body names, normalised (NFKC, spaces collapsed); 422 naming the field and the
    allowed characters if it is not a name (bot.names)."""
    try:
        return names.clean_name(claimed)
    except ValueError as exc:
        raise InvalidInputError("agent", f"the agent's name {exc}") from None


def acting_agent(owner: str | None, claimed: str | None) -> str | None:
    """Who acts: the key's owner when the key names one (a body naming someone else is refused), else the
    body's name, normalised."""
    if owner is None:
        return clean_agent(claimed) if claimed is not None else None
    if claimed is not None and _fold(claimed) != _fold(owner):
        raise HTTPException(403, f"this API key belongs to agent '{owner}'; it cannot act as '{claimed}'")
    return owner


@functools.lru_cache(maxsize=1024)
def _is_remote(host: str) -> bool:
    """Whether `host` is a real non-loopback IP address (cached: a server sees few distinct peers)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket is this machine too
    return not address.is_loopback


def _remote_refusal(host: str | None) -> HTTPException | None:
    """Without API keys every endpoint is open, so only this machine may call them.

    `bot serve` refuses to listen elsewhere without keys; this holds when uvicorn is started by hand
    (`uvicorn bot.api.main:app --host 0.0.0.0`) too. Only a real non-loopback address is refused: a unix
    socket has none, and test clients name themselves.
    """
    if host and _is_remote(host):
        return HTTPException(
            403,
            f"this server has no API keys (BOT_API_KEYS), so it answers only requests from this machine, "
            f"not from {host}; set keys to serve other machines",
        )
    return None


def admit(request: Request, allowed: Set[str]) -> str:
    """The role `request` acts with if it is one of `allowed`; else raises the HTTPException refusing it.

    Without keys every request acts as admin, but only from this machine (`_remote_refusal`).
    """
    if not runtime_of(request).keys:
        refusal = _remote_refusal(request.client.host if request.client is not None else None)
        if refusal is not None:
            raise refusal
        return "admin"
    who = caller_of(request)
    if who.scheme.lower() != "bearer" or not who.token:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    role = who.role
    if role is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if role not in allowed:
        needed = " or ".join(sorted(allowed))
        raise HTTPException(
            403,
            f"{_article(role)} {role} key may not use {request.url.path}; it needs {_article(needed)} {needed} key",
        )
    return role


def require(*roles: str) -> Callable[..., Awaitable[str]]:
    """A dependency admitting keys of these roles (admin is always admitted); open when no keys are set."""
    allowed = frozenset({*roles, "admin"})

    async def check(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> str:
        return admit(request, allowed)

    return check


def _article(word: str) -> str:
    """'an' before a vowel sound ("an agent key", "an analyst key"), else 'a'."""
    return "an" if word[:1].lower() in "aeio" else "a"
