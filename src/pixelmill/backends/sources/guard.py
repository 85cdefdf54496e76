"""Which remote sources may be fetched (SSRF protection), decided before a connection.

Two checks, both pure:

* :func:`parse_source` reads a URL and refuses what the allow-lists do not name: a scheme
  other than ``http``/``https``/``s3``, a host off ``allowed_hosts``, a bucket off
  ``allowed_buckets``, user-info (``http://user@host``), IP-literal hosts that are not
  listed, and ports other than the scheme's own unless the host entry names one;
* :func:`check_addresses` looks at every address the host resolved to: one private,
  loopback, link-local, multicast, reserved or unspecified address (IPv4-mapped IPv6
  included) refuses the URL, unless ``allowed_networks`` names it. The fetcher then
  connects to exactly the addresses checked (DNS is resolved once), so a name that
  resolves differently a moment later (DNS rebinding) cannot move the connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from pixelmill.errors import SourceRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PORTS = {"http": 80, "https": 443}


class SourcePolicy(Protocol):
    """What the checks read of :class:`pixelmill.settings.SourcesSettings`."""

    @property
    def allowed_hosts(self) -> list[str]: ...

    @property
    def allowed_buckets(self) -> list[str]: ...

    @property
    def allowed_networks(self) -> list[str]: ...

    @property
    def https_only(self) -> bool: ...


@dataclass(frozen=True)
class Source:
    """A checked source URL: ``host`` is the host name (http) or bucket (s3), ``target``
    the path and query to ask for (http) or the object key (s3)."""

    url: str
    scheme: str
    host: str
    port: int
    target: str


def parse_source(url: str, policy: SourcePolicy) -> Source:
    """``url`` as a :class:`Source`, or :class:`SourceRefused` saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise SourceRefused("the source is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme == "s3":
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not key or bucket not in policy.allowed_buckets:
            raise SourceRefused(f"bucket {bucket!r} is not an allowed source")
        return Source(url, scheme, bucket, 0, key)
    if scheme not in _PORTS or (policy.https_only and scheme == "http"):
        raise SourceRefused(f"scheme {scheme or '(none)'!r} is not an allowed source")
    if parts.username is not None or parts.password is not None:
        raise SourceRefused("source URLs with user names or passwords are refused")
    if port == _PORTS[scheme]:
        port = None  # the scheme's own port needs no entry of its own
    host = (parts.hostname or "").rstrip(".").lower()
    if not host or not host_allowed(host, port, policy.allowed_hosts):
        raise SourceRefused(f"host {host or '(none)'!r} is not an allowed source")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Source(url, scheme, host, port or _PORTS[scheme], target)


def host_allowed(host: str, port: int | None, patterns: Iterable[str]) -> bool:
    """Whether ``host`` (and ``port``, when the URL names one) matches an entry of
    ``patterns``: ``name``, ``name:port``, or ``*.suffix`` for sub-domains (never the
    bare suffix, never an IP literal)."""
    literal = _is_ip(host)
    for pattern in patterns:
        name, _, wanted_port = pattern.lower().rpartition(":")
        if not name or not wanted_port.isdigit():  # no port in the entry
            name, wanted_port = pattern.lower(), ""
        if wanted_port and port != int(wanted_port):
            continue
        if not wanted_port and port is not None:
            continue  # a port of its own must be allowed by name
        name = name.strip("[]")
        if name == host:
            return True
        if name.startswith("*.") and not literal and host.endswith(name[1:]):
            return True
    return False


def check_addresses(host: str, addresses: Sequence[str], allowed_networks: Iterable[str]) -> None:
    """Refuse ``host`` when it resolved to nothing, or to any address that is not a
    public unicast address (unless one of ``allowed_networks`` holds it)."""
    if not addresses:
        raise SourceRefused(f"host {host!r} does not resolve")
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
    for text in addresses:
        address = _unmapped(ipaddress.ip_address(text.split("%")[0]))
        if any(address in network for network in networks):
            continue
        if not address.is_global or address.is_multicast:
            raise SourceRefused(f"host {host!r} resolves to an address that is not public")


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
