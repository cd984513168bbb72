"""A local PgBouncer in transaction mode in front of a PostgreSQL: for the pooling tests, the
benchmark, and trying ``DATABASE_POOL_MODE=transaction`` by hand (Debian's ``pgbouncer`` package)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _unprivileged_user(host: str) -> str:
    """PgBouncer refuses to run as root: as root it runs as the owner of the server's socket
    folder (an embedded PostgreSQL's), else as ``postgres`` (``nobody`` where there is none)."""
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return "nobody"


@contextmanager
def pgbouncer(*, host: str, port: str | int, user: str, password: str = "", pool_size: int = 2,
              log: Path | None = None, timeout: float = 15):
    """PgBouncer on a free port of 127.0.0.1 until the block ends; yields the port. Every database
    of the server behind it, as ``user``; ``pool_size`` server connections per database."""
    binary = pgbouncer_binary()
    if binary is None:
        raise FileNotFoundError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    listen = _free_port()
    target = f"host={host or '127.0.0.1'} port={port or 5432} user={user}" + (f" password={password}" if password else "")
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as folder:
        config = Path(folder) / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
            # Clients are not checked: the pool logs in to the server as the one user above.
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 500\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        os.chmod(folder, 0o755)
        os.chmod(config, 0o644)
        command = [binary, *(["-u", _unprivileged_user(host)] if os.geteuid() == 0 else []), str(config)]
        out = open(log, "wb") if log else subprocess.DEVNULL
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(listen):
                if process.poll() is not None:
                    raise RuntimeError(f"pgbouncer exited with {process.returncode}" + (f"; see {log}" if log else ""))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"pgbouncer not listening after {timeout}s")
                time.sleep(0.1)
            yield listen
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if log:
                out.close()
