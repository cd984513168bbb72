"""The nightly benchmark, queued by beat in the public schema (docs/benchmark.md)."""
from __future__ import annotations

from celery import shared_task


@shared_task
def benchmark_nightly() -> dict:
    from benchmark.rollup import nightly

    return nightly()
