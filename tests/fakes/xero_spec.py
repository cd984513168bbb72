"""Where the tests find Xero's OpenAPI description of the accounting API.

In order:

1. ``XERO_OPENAPI_SPEC``: a path to ``xero_accounting.yaml`` (offline use);
2. ``xero_accounting.yaml`` in a ``shared/specs/`` folder beside the checkout;
3. a cached copy under ``var/cache/`` (ignored by git), checked against its SHA-256;
4. otherwise the file is downloaded once from Xero's public OpenAPI repository, at a pinned
   commit, and kept in that cache only if its SHA-256 is the pinned one.

With none of these the tests that need it fail with one line saying how to provide it; they
are never skipped.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SPEC_COMMIT = "e952d0bda3628facbf7afc5990ad6a0e7e77bd1e"  # info.version 16.1.0
SPEC_SHA256 = "140f64f8e6bd2d8524b8ffdbffd08589d417efa5466ba57bfa04939a69ff6db8"
SPEC_URL = f"https://raw.githubusercontent.com/XeroAPI/Xero-OpenAPI/{SPEC_COMMIT}/xero_accounting.yaml"
BESIDE_CHECKOUT = BASE_DIR.parent / "shared" / "specs" / "xero_accounting.yaml"
CACHE_DIR = BASE_DIR / "var" / "cache"


class XeroSpecUnavailable(RuntimeError):
    """The file could not be found or fetched; the message says how to provide it."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _how_to(reason: str) -> str:
    return (f"Xero's OpenAPI file is needed by the Xero tests and {reason}: set XERO_OPENAPI_SPEC=/path/to/xero_accounting.yaml "
            f"(from github.com/XeroAPI/Xero-OpenAPI at commit {SPEC_COMMIT}), or allow one download of {SPEC_URL}")


def xero_spec_path(*, environ: dict[str, str] | None = None, beside: Path = BESIDE_CHECKOUT, cache_dir: Path = CACHE_DIR,
                   url: str | None = None, timeout: float = 30) -> Path:
    """The path of Xero's OpenAPI file, downloading it into the cache if needed."""
    environ = os.environ if environ is None else environ
    given = environ.get("XERO_OPENAPI_SPEC")
    if given:
        path = Path(given)
        if not path.is_file():
            raise XeroSpecUnavailable(_how_to(f"XERO_OPENAPI_SPEC={given} is not a file"))
        return path
    if beside.is_file():
        return beside
    cached = cache_dir / f"xero_accounting-{SPEC_COMMIT[:12]}.yaml"
    if cached.is_file() and _sha256(cached.read_bytes()) == SPEC_SHA256:
        return cached
    url = url or environ.get("XERO_OPENAPI_URL") or SPEC_URL
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (a fixed https URL unless overridden)
            data = answer.read()
    except (urllib.error.URLError, OSError) as error:
        raise XeroSpecUnavailable(_how_to(f"could not be downloaded ({error})")) from None
    if _sha256(data) != SPEC_SHA256:
        raise XeroSpecUnavailable(_how_to(f"the download's SHA-256 is {_sha256(data)}, not the pinned {SPEC_SHA256}"))
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(cached)
    return cached
