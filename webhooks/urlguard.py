"""Where a webhook may be sent: the SSRF guard.

A target URL is http(s) with a host name, no user name or password, and every address its
host resolves to is public: private, loopback, link-local (169.254.169.254, the cloud
metadata address), multicast, reserved, unspecified and shared (CGNAT) addresses are
refused, IPv4-mapped IPv6 included. The check runs when a subscription is saved (a form
error) and again before every delivery; the delivery then connects to the very address
that was checked (``webhooks.sender``), so a name re-pointed in between (DNS rebinding)
cannot reach an inside address. ``WEBHOOKS_ALLOW_PRIVATE`` (tests, a private install) lets
inside addresses through.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

SCHEMES = {"http": 80, "https": 443}


class UnsafeTarget(ValueError):
    """The URL may not be called; the message says why, in the admin's words."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, without brackets (SNI, certificate, Host header)
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # the checked IP addresses the delivery connects to, in the resolver's order

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def address_refusal(address: str) -> str | None:
    """Why ``address`` is no place to send a webhook, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, words in (("is_loopback", "a loopback"), ("is_link_local", "a link-local"),
                        ("is_multicast", "a multicast"), ("is_unspecified", "an unspecified"),
                        ("is_private", "a private"), ("is_reserved", "a reserved")):
        if getattr(ip, flag):
            return f"{ip} is {words} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a well-formed target URL, else ``UnsafeTarget``."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        raise UnsafeTarget("Enter a valid URL, such as https://example.com/webhooks.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeTarget("The URL must start with https:// (or http://).")
    if not parts.hostname:
        raise UnsafeTarget("The URL needs a host name, such as https://example.com/webhooks.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("Leave the user name and password out of the URL; deliveries are signed instead.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or SCHEMES[scheme], path


def resolve(url: str) -> Target:
    """The target of ``url`` at one checked address; ``UnsafeTarget`` when it may not be called."""
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeTarget(f"The host {host} could not be found.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeTarget(f"The host {host} could not be found.")
    if not _allow_private():
        # Every address counts: a name with one public and one inside address is refused.
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                raise UnsafeTarget(f"Webhooks are not sent to private or internal addresses: {host} resolves to {refusal}.")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))
