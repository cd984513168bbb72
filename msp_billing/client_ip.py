"""The address a request came from, as the sign-in lock-out counts it.

Behind a reverse proxy every request comes from the proxy, so failed sign-ins from all
users would count against one address. ``X-Forwarded-For`` says who the proxy served, but
anyone can send that header: it is read only when the request comes from a proxy listed
in ``TRUSTED_PROXIES`` (addresses or networks). The header is then read from the right
(the hop the trusted proxy added) leftwards, past further trusted proxies, to the first
address that is not one: the client as seen by the outermost proxy we trust.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_networks() -> tuple:
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address) -> bool:
    return address is not None and any(address in network for network in trusted_networks())


def client_ip(request) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or from ``X-Forwarded-For`` when a trusted proxy sent it."""
    remote = request.META.get("REMOTE_ADDR")
    peer = _address(remote or "")
    if not is_trusted(peer):
        return remote
    forwarded = [_address(part) for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if hop is None:  # a garbled entry: nothing to its left can be trusted
            break
        if not is_trusted(hop):
            return str(hop)
    return remote
