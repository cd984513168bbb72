"""Process helpers shared by the benchmarks that start Celery workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def solo_workers_start(count: int, *, queue: str, log_dir: Path) -> list[subprocess.Popen]:
    """``count`` Celery workers (one process each, ``--pool=solo``) on ``queue`` alone, each in its own
    process group, logging to ``log_dir``. The environment is this process's (the embedded servers'
    URLs), without the test-only render delay."""
    env = dict(os.environ)
    env.pop("MSP_PDF_TEST_DELAY", None)
    workers = []
    for index in range(count):
        command = [sys.executable, "-m", "celery", "-A", "msp_billing", "worker", "--pool=solo", "--concurrency=1",
                   "-Q", queue, "-n", f"{queue}_{index}@%h", "--loglevel=WARNING", "--without-heartbeat",
                   "--without-gossip", "--without-mingle"]
        log = (log_dir / f"worker_{index}.log").open("wb")
        workers.append(subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))
    return workers


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


def probe_json(module: str, *args: str, env: dict[str, str]) -> dict:
    """Run ``python -m module args`` in the project with ``env``; its last line of output, read as JSON."""
    import json

    out = subprocess.run([sys.executable, "-m", module, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
