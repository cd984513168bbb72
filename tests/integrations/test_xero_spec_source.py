"""Where Xero's OpenAPI file comes from: the given path, the copy beside the checkout, the
cache, or one checked download — and one clear line when none is there."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes import xero_spec
from tests.fakes.xero_spec import SPEC_SHA256, XeroSpecUnavailable, xero_spec_path


class _Served:
    def __init__(self, body: bytes) -> None:
        self.body, self.requests = body, 0

    def __enter__(self) -> str:
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                served.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/xero_accounting.yaml"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def real_spec() -> bytes:
    """The pinned file's bytes, from wherever this machine finds it."""
    return xero_spec_path().read_bytes()


def test_the_file_found_is_the_pinned_one(real_spec):
    assert hashlib.sha256(real_spec).hexdigest() == SPEC_SHA256


def test_an_explicit_path_wins(tmp_path):
    given = tmp_path / "mine.yaml"
    given.write_text("openapi: 3.0.0\n")
    assert xero_spec_path(environ={"XERO_OPENAPI_SPEC": str(given)}, beside=tmp_path / "none.yaml", cache_dir=tmp_path) == given


def test_an_explicit_path_that_is_missing_says_so(tmp_path):
    with pytest.raises(XeroSpecUnavailable, match="XERO_OPENAPI_SPEC=.*is not a file"):
        xero_spec_path(environ={"XERO_OPENAPI_SPEC": str(tmp_path / "gone.yaml")}, beside=tmp_path / "none.yaml", cache_dir=tmp_path)


def test_download_is_checked_and_cached_once(tmp_path, real_spec):
    cache = tmp_path / "cache"
    with _Served(real_spec) as url:
        served = xero_spec.xero_spec_path(environ={}, beside=tmp_path / "none.yaml", cache_dir=cache, url=url)
        again = xero_spec.xero_spec_path(environ={}, beside=tmp_path / "none.yaml", cache_dir=cache, url=url)
    assert served == again and served.parent == cache
    assert served.read_bytes() == real_spec


def test_a_download_with_another_checksum_is_refused_and_not_kept(tmp_path):
    cache = tmp_path / "cache"
    with _Served(b"openapi: 3.0.0\ninfo: {title: tampered}\n") as url:
        with pytest.raises(XeroSpecUnavailable, match="SHA-256") as raised:
            xero_spec_path(environ={}, beside=tmp_path / "none.yaml", cache_dir=cache, url=url)
    assert "XERO_OPENAPI_SPEC=" in str(raised.value) and "\n" not in str(raised.value)
    assert not cache.exists() or not any(cache.iterdir())


def test_no_file_and_no_network_fails_with_one_line_saying_how(tmp_path):
    with pytest.raises(XeroSpecUnavailable) as raised:
        xero_spec_path(environ={}, beside=tmp_path / "none.yaml", cache_dir=tmp_path / "cache", url="http://127.0.0.1:9/none.yaml", timeout=2)
    message = str(raised.value)
    assert "\n" not in message and "XERO_OPENAPI_SPEC=" in message and "could not be downloaded" in message


def test_beside_the_checkout_is_used_when_present(tmp_path):
    beside = tmp_path / "xero_accounting.yaml"
    beside.write_text("openapi: 3.0.0\n")
    assert xero_spec_path(environ={}, beside=beside, cache_dir=Path(tmp_path / "cache")) == beside
