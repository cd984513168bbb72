"""One HTTP POST of a delivery, to an address the SSRF guard checked.

urllib3 (beneath requests) connects to the checked addresses (the first that takes the
connection) while the Host header, TLS server name and certificate check use the host name:
the name is resolved once, checked, and not resolved again. Redirects are not followed (a 3xx is a failed attempt); timeouts are short;
only the first bytes of the answer are kept for the log.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from webhooks.urlguard import Target

EXCERPT_BYTES = 500


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""
    unreachable: bool = False  # no connection made: the next checked address may be tried

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(target: Target, *, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST to the first of the target's checked addresses that takes the connection."""
    started = time.monotonic()
    outcome = Outcome(status_code=None, duration_ms=0, error="No address to connect to.")
    for address in target.addresses:
        outcome = _post_to(address, target, body=body, headers=headers, started=started)
        if not outcome.unreachable:
            break
    return outcome


def _post_to(address: str, target: Target, *, body: bytes, headers: dict[str, str], started: float) -> Outcome:
    timeout = urllib3.Timeout(connect=getattr(settings, "WEBHOOKS_CONNECT_TIMEOUT", 3.0),
                              read=getattr(settings, "WEBHOOKS_READ_TIMEOUT", 10.0))
    options: dict = {"host": address, "port": target.port, "timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool_class = urllib3.HTTPSConnectionPool
        options.update(server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
                       ca_certs=getattr(settings, "WEBHOOKS_CA_BUNDLE", "") or certifi.where())
    else:
        pool_class = urllib3.HTTPConnectionPool
    try:
        with pool_class(**options) as pool:
            response = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                                    redirect=False, retries=False, preload_content=False, assert_same_host=False)
            try:
                excerpt = response.read(EXCERPT_BYTES, decode_content=False) or b""
            finally:
                response.release_conn()
                response.close()
            status = response.status
    except urllib3.exceptions.NewConnectionError:
        return Outcome(status_code=None, duration_ms=_ms(started), error="Connection refused or unreachable.", unreachable=True)
    except urllib3.exceptions.ConnectTimeoutError:
        return Outcome(status_code=None, duration_ms=_ms(started), error="Timed out connecting.", unreachable=True)
    except urllib3.exceptions.HTTPError as error:
        return Outcome(status_code=None, duration_ms=_ms(started), error=_describe(error))
    except OSError as error:
        return Outcome(status_code=None, duration_ms=_ms(started), error=f"Connection failed: {error}"[:500])
    return Outcome(status_code=status, duration_ms=_ms(started), excerpt=excerpt.decode("utf-8", "replace")[:EXCERPT_BYTES])


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(error: Exception) -> str:
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return "Timed out waiting for the answer."
    if isinstance(error, urllib3.exceptions.SSLError):
        return f"TLS failed: {error}"[:500]
    return f"{type(error).__name__}: {error}"[:500]
