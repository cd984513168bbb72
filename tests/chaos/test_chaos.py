"""Faults during real work (tests/chaos/scenario.py), on a deployment of their own under a temporary folder.

The short form — each fault once: worker and beat SIGKILLed mid month-end, PostgreSQL and Redis
restarted and the worker killed mid-render, the worker killed mid-export, gunicorn killed while
serving — runs with the rest of the suite. The full form (each fault three times, at other
moments) is ``make chaos``. Both print the time to recover from each fault.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def _scenario(*args: str, timeout: float) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "TEST_DB_NAME", "TEST_REDIS_DB")}
    result = subprocess.run([sys.executable, "-m", "tests.chaos.scenario", *args], cwd=BASE_DIR, env=env, timeout=timeout,
                            capture_output=True, text=True)
    report = "\n".join(line for line in result.stdout.splitlines())
    print(report)
    assert result.returncode == 0, f"{report}\n{result.stderr[-3000:]}"
    return report


def test_after_each_kind_of_fault_nothing_is_billed_twice_lost_or_missing():
    report = _scenario(timeout=600)
    assert "chaos: OK" in report and "time to recover" in report


@pytest.mark.chaos
def test_after_each_fault_three_times_nothing_is_billed_twice_lost_or_missing():
    report = _scenario("--full", timeout=1800)
    assert "chaos: OK" in report
