"""Redis as the Celery broker of `AIRFLOW_OBS_EXECUTOR=celery`: its config file, and whether it answers."""

from __future__ import annotations

import redis

from local_stack.programs import redis_config_file
from local_stack.secrets import redis_password, write_private
from local_stack.settings import LOOPBACK, StackSettings


def render_redis_config(settings: StackSettings) -> str:
    folder = settings.home / "redis"
    lines = [
        f"bind {LOOPBACK}",
        f"port {settings.ports['redis']}",
        "protected-mode yes",
        f"requirepass {redis_password(settings)}",
        f"dir {folder}",
        # Queued Celery messages survive a broker restart, as they do in compose (appendonly yes there too).
        "appendonly yes",
        'save ""',
        "daemonize no",
        "loglevel notice",
    ]
    return "\n".join(lines) + "\n"


def write_redis_config(settings: StackSettings) -> None:
    (settings.home / "redis").mkdir(parents=True, exist_ok=True)
    # It holds the broker password: owner-only, like the supervisor config.
    write_private(redis_config_file(settings), render_redis_config(settings))


def ping(settings: StackSettings) -> bool:
    client = redis.Redis(
        host=LOOPBACK, port=settings.ports["redis"], password=redis_password(settings), socket_timeout=3
    )
    try:
        return bool(client.ping())
    finally:
        client.close()
