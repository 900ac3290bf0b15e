"""The client's IP address and location, as Google Cloud's load balancer reports them.

**IP.** Google's external Application Load Balancer appends ``<client-ip>,<lb-ip>`` to
``X-Forwarded-For`` (anything before them came from the client and proves nothing); Cloud Run's
own front end appends the client address as the last entry. So the client is the second-to-last
entry when the request came through the load balancer (it carries the geo headers below), else the
last entry, else the socket's peer. A server relay (Segment's ``context.ip``, the native ``ip``
field) names the end user's address itself, and that wins.

**Privacy.** ``EDP_IP_PRIVACY``: ``full`` keeps the address, ``truncated`` (default) keeps the
network only (IPv4 /24, IPv6 /48: the last octet / last 80 bits zeroed, as Google Analytics
anonymised IPs), ``dropped`` stores none.

**Location.** The load balancer adds client-location headers only when its backend service is
configured with custom request headers (``custom_request_headers`` in Terraform)::

    X-Client-Geo-Country:{client_region}
    X-Client-Geo-Region:{client_region_subdivision}
    X-Client-Geo-City:{client_city}

(``{client_region}`` is the CLDR region code of the client IP, e.g. ``KR``;
``{client_region_subdivision}`` e.g. ``KR11``; ``{client_city}`` e.g. ``Seoul``.) They describe the
request's address: an event whose IP came from a relay gets no location from them.

Example:
    >>> net = client_network({"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 130.211.0.1",
    ...                       "X-Client-Geo-Country": "KR"}, "10.0.0.2")
    >>> net.ip, net.geo_country
    ('203.0.113.9', 'KR')
    >>> apply_ip_privacy("203.0.113.9", "truncated")
    '203.0.113.0'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, Protocol

IpPrivacy = Literal["full", "truncated", "dropped"]

GEO_COUNTRY_HEADER: Final = "X-Client-Geo-Country"
GEO_REGION_HEADER: Final = "X-Client-Geo-Region"
GEO_CITY_HEADER: Final = "X-Client-Geo-City"
_GEO_LIMITS: Final = {GEO_COUNTRY_HEADER: 8, GEO_REGION_HEADER: 16, GEO_CITY_HEADER: 128}


class HeaderLookup(Protocol):
    """Request headers, looked up by (case-insensitive, for werkzeug's) name."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ClientNetwork:
    """Where one request came from: the client IP and its location (any may be unknown)."""

    ip: str | None = None
    geo_country: str | None = None
    geo_region: str | None = None
    geo_city: str | None = None


def _header(headers: HeaderLookup, name: str) -> str | None:
    value = headers.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[: _GEO_LIMITS.get(name, 64)] if value else None


def valid_ip(value: object) -> str | None:
    """The normalised address, or None when ``value`` is not an IPv4/IPv6 address.

    Example:
        >>> valid_ip(" 2001:DB8::1 "), valid_ip("localhost")
        ('2001:db8::1', None)
    """
    if not isinstance(value, str):
        return None
    return _normalised(value)


# Parsing an address costs ~30 µs per call in ``ipaddress``; a client sends many events from
# the same address, and every request re-reads the same proxy and peer addresses. Bounded.
@lru_cache(maxsize=4096)
def _normalised(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_network(headers: HeaderLookup, remote_addr: str | None) -> ClientNetwork:
    """The client's IP and location from the request headers (see the module docstring)."""
    geo = (
        _header(headers, GEO_COUNTRY_HEADER),
        _header(headers, GEO_REGION_HEADER),
        _header(headers, GEO_CITY_HEADER),
    )
    through_lb = any(v is not None for v in geo)
    forwarded = [p.strip() for p in (headers.get("X-Forwarded-For") or "").split(",") if p.strip()]
    candidate: str | None = None
    if through_lb and len(forwarded) >= 2:
        candidate = forwarded[-2]
    elif forwarded:
        candidate = forwarded[-1]
    ip = valid_ip(candidate) or valid_ip(remote_addr)
    return ClientNetwork(ip, *geo)


def apply_ip_privacy(ip: str | None, mode: IpPrivacy) -> str | None:
    """The address as the privacy mode allows storing it.

    Example:
        >>> apply_ip_privacy("2001:db8:85a3:8d3:1319:8a2e:370:7348", "truncated")
        '2001:db8:85a3::'
        >>> apply_ip_privacy("203.0.113.9", "dropped") is None
        True
    """
    if ip is None or mode == "dropped":
        return None
    return _private(ip, mode)


@lru_cache(maxsize=4096)
def _private(ip: str, mode: IpPrivacy) -> str:
    address = ipaddress.ip_address(ip)
    if mode == "full":
        return str(address)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
