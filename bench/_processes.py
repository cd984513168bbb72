"""Process helpers shared by the benchmarks that start Celery workers."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of one process (VmHWM), in MB; 0 once it has gone."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def stop_process_groups(processes: list[subprocess.Popen], *, timeout: float = 30) -> None:
    """SIGTERM each process group still running, then SIGKILL what has not ended in ``timeout`` s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
