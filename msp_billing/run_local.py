"""`make run`: everything on one machine from one command.

Starts the embedded PostgreSQL and Redis when no URLs are configured, migrates the shared
and every tenant schema, creates or refreshes the demo MSP, then runs the web server, one
Celery worker and beat until Ctrl-C, which stops everything it started. Safe to run again.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = os.environ.get("RUN_HOST", "127.0.0.1")
PORT = os.environ.get("RUN_PORT", "8000")


# Libraries' deprecation notices are for their authors, not for whoever starts the demo.
# Nor is Celery's notice that a container runs as root.
QUIET_WARNINGS = ("ignore::DeprecationWarning,ignore::PendingDeprecationWarning,ignore::SyntaxWarning,"
                  "ignore:You're running the worker with superuser privileges")


def manage(*args: str) -> str:
    """Run a management command quietly; its output only when it fails (then raised)."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout[-5000:] + result.stderr[-5000:])
        raise subprocess.CalledProcessError(result.returncode, result.args)
    return result.stdout


def step(label: str, *args: str) -> str:
    """One line of progress per set-up step: "Migrating … done (12 s)"."""
    print(f"  {label} …", end=" ", flush=True)
    started = time.monotonic()
    try:
        output = manage(*args)
    except subprocess.CalledProcessError:
        print("failed", flush=True)
        raise
    print(f"done ({time.monotonic() - started:.0f} s)", flush=True)
    return output


def _local_integration_key(var_dir: Path) -> None:
    """A Fernet key for accounting tokens on this machine (kept in var/), unless one is configured."""
    if os.environ.get("INTEGRATION_FERNET_KEYS"):
        return
    from cryptography.fernet import Fernet

    key_file = var_dir / "integration-fernet.key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(Fernet.generate_key().decode())
        key_file.chmod(0o600)
    os.environ["INTEGRATION_FERNET_KEYS"] = key_file.read_text().strip()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")
    os.environ.setdefault("PUBLIC_URL_PORT", PORT)
    os.environ.setdefault("PYTHONWARNINGS", QUIET_WARNINGS)
    # pgserver asks platformdirs for a runtime folder, which warns on machines without one.
    warnings.filterwarnings("ignore", module="platformdirs")
    from msp_billing.embedded import VAR_DIR, ensure_embedded_services, stop_embedded_services

    print(f"Starting MSP Billing on port {PORT} (data under {VAR_DIR})", flush=True)
    started = ensure_embedded_services()
    _local_integration_key(VAR_DIR)
    for name in started:
        print(f"  Embedded {'PostgreSQL' if name.startswith('DATABASE') else 'Redis'} started", flush=True)

    children: list[subprocess.Popen] = []
    try:
        step("Migrating the shared schema", "migrate_schemas", "--shared", "--verbosity=0")
        step("Checking the platform host", "ensure_platform")
        step("Migrating every MSP's schema", "migrate_schemas", "--tenant", "--verbosity=0")
        demo = step("Loading the demo MSP", "seed_demo")
        celery = [sys.executable, "-m", "celery", "-A", "msp_billing", "--quiet"]  # no banners
        beat_schedule = VAR_DIR / "celerybeat-schedule"
        commands = {
            "web": [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}"],
            "worker": [*celery, "worker", "--loglevel=WARNING", "--concurrency=2"],
            "beat": [*celery, "beat", "--loglevel=WARNING", f"--schedule={beat_schedule}", "--pidfile="],
        }
        for name, command in commands.items():
            children.append(subprocess.Popen(command, cwd=BASE_DIR))
        print(
            f"\n{demo.strip()}\n\n"
            f"MSP Billing is running.\n"
            f"  Demo MSP:   http://demo.localhost:{PORT}/\n"
            f"  Sign-up:    http://localhost:{PORT}/signup/\n"
            f"  Health:     http://localhost:{PORT}/healthz\n"
            f"Ctrl-C stops everything; signing in survives a restart.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [child.args for child in children if child.poll() not in (None, 0)]
        if failed:
            print(f"Stopped because a process exited: {failed}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as error:
        print(f"Set-up step failed: {' '.join(map(str, error.cmd))}", file=sys.stderr)
        return 1
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        stop_embedded_services()
        print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
