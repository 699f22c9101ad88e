"""Who sent a request: the API key's role and owner, and the client's address, worked out once per request.

The request guard builds a `Caller` before anything else runs and leaves it in the ASGI scope; the rate
limiter and the endpoints' role checks (`bot.api.deps`) both read that one object, so they can never
disagree about which key or which address a request came with (two `Authorization` headers are refused).

The client address is the TCP peer unless the peer is a configured proxy (`BOT_FORWARDED_ALLOW_IPS`,
`bot serve --forwarded-allow-ips`): then `X-Forwarded-For` is read from the right, skipping trusted
proxies, and the first address that is not one is the client. Entries that are not IP addresses are
never believed: the walk stops at the last address it could verify.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from bot.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Caller:
    """One request's credentials and client, as the guard read them."""

    scheme: str  # the Authorization scheme as sent ("" without the header)
    token: str  # the key as sent ("" without one)
    role: str | None  # the key's role; None for no key or an unknown one
    owner: str | None  # the person an `agent@NAME:KEY` key belongs to
    key_id: str | None  # a short hash of the key for rate limits and logs (never the key itself)
    client: str  # the client address used for limits and the access log


def role_of(keys: dict[str, str], presented: str) -> str | None:
    """The value `keys` maps a presented key to, comparing against every key in constant time."""
    found = None
    encoded = presented.encode()
    for key, role in keys.items():
        if hmac.compare_digest(key.encode(), encoded):
            found = role
    return found


def identify(authorization: bytes | None, client: str, keys: dict[str, str], names: dict[str, str]) -> Caller:
    """The caller behind one `Authorization` header value (or none) coming from `client`."""
    scheme, _, token = (authorization or b"").decode("latin-1").strip().partition(" ")
    token = token.strip()
    bearer = scheme.lower() == "bearer" and bool(token)
    return Caller(
        scheme=scheme,
        token=token,
        role=role_of(keys, token) if bearer and keys else None,
        owner=role_of(names, token) if bearer and names else None,
        # a hash of the key itself (not the header), so "Bearer"/"bearer" share a bucket
        key_id=hashlib.sha256(token.encode()).hexdigest()[:16] if token else None,
        client=client,
    )


def parse_proxies(spec: str) -> tuple[IPNetwork, ...] | None:
    """Networks from 'ADDRESS|NETWORK,...'; None for '*' (every peer is a proxy); () for ''."""
    if spec.strip() == "*":
        return None
    networks: list[IPNetwork] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"BOT_FORWARDED_ALLOW_IPS entry '{entry}' is not an IP address or network; use e.g. "
                "'10.0.0.5,10.1.0.0/16', '*' for any peer, or leave it empty to trust no proxy"
            ) from None
    return tuple(networks)


def _address(text: str) -> IPAddress | None:
    """An IP address from one X-Forwarded-For entry ('1.2.3.4', '[::1]', '1.2.3.4:5678'), or None."""
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Which peers may name the client in `X-Forwarded-For`."""

    def __init__(self, spec: str) -> None:
        self.networks = parse_proxies(spec)

    @property
    def any(self) -> bool:
        """Whether any peer at all may forward."""
        return self.networks is None or bool(self.networks)

    def trusts(self, address: IPAddress) -> bool:
        """Whether `address` is a configured proxy."""
        return self.networks is None or any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[bytes]) -> str:
        """The client address of a request from `peer` carrying these X-Forwarded-For values."""
        if not forwarded_for or not self.any:
            return peer
        current = _address(peer)
        if current is None or not self.trusts(current):
            return peer
        entries = b",".join(forwarded_for).decode("latin-1").split(",")
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:  # garbage: believe nothing further left than the last verified hop
                break
            current = address
            if not self.trusts(address):
                break
        return str(current)
