"""Worker heartbeats: each Celery worker keeps its own time stamp fresh in Redis.

A worker writes ``{hostname: unix time}`` into one Redis hash (the cache's Redis) every
``WORKER_HEARTBEAT_SECONDS`` from a thread of its own (so a long task does not hold it
up), and removes its entry when it shuts down. ``/healthz`` reads the hash: a worker whose
time stamp is older than ``WORKER_HEARTBEAT_STALE_SECONDS`` (killed, frozen, cut off) no
longer counts. Reading one hash takes a millisecond; asking the workers to answer a
ping takes as long as the slowest worker's reply timeout.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings

log = logging.getLogger(__name__)

HASH_KEY = "msp-billing:worker-heartbeats"
# Entries this old are removed by whoever reads them (a worker that was killed leaves one).
FORGET_AFTER_SECONDS = 24 * 60 * 60


def interval() -> float:
    return float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 5))


def stale_after() -> float:
    return float(getattr(settings, "WORKER_HEARTBEAT_STALE_SECONDS", 30))


def redis_client(*, timeout: float = 1.0) -> redis.Redis:
    """A client for the Redis the cache uses (``REDIS_URL``; also there when the broker is RabbitMQ)."""
    location = settings.CACHES["default"]["LOCATION"]
    if isinstance(location, (list, tuple)):
        location = location[0]
    return redis.Redis.from_url(location, socket_timeout=timeout, socket_connect_timeout=timeout)


def beat(client: redis.Redis, hostname: str, *, at: float | None = None) -> None:
    client.hset(HASH_KEY, hostname, f"{time.time() if at is None else at:.3f}")


def workers_alive(client: redis.Redis, *, now: float | None = None) -> dict[str, float]:
    """Hostname → age in seconds of every worker with a fresh heartbeat."""
    now = time.time() if now is None else now
    alive, forget = {}, []
    for name, stamp in client.hgetall(HASH_KEY).items():
        try:
            age = now - float(stamp)
        except ValueError:
            age = FORGET_AFTER_SECONDS + 1
        if age <= stale_after():
            alive[name.decode()] = round(max(age, 0.0), 1)
        elif age > FORGET_AFTER_SECONDS:
            forget.append(name)
    if forget:
        client.hdel(HASH_KEY, *forget)
    return alive


class Heartbeat:
    """The thread a worker runs between ``worker_ready`` and ``worker_shutdown``."""

    def __init__(self, *, hostname: str):
        self.client = redis_client(timeout=max(interval(), 1.0))
        self.hostname = hostname
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                beat(self.client, self.hostname)
            except redis.RedisError as error:  # Redis is away; health says so anyway
                log.warning("worker heartbeat not written: %s", error)
            self.stopped.wait(interval())

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=interval() + 2)
        try:
            self.client.hdel(HASH_KEY, self.hostname)
        except redis.RedisError:
            pass


_running: dict[str, Heartbeat] = {}


def on_worker_ready(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    heartbeat = Heartbeat(hostname=hostname)
    _running[hostname] = heartbeat
    heartbeat.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    for hostname in list(_running):
        _running.pop(hostname).stop()
