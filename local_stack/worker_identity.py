"""The host name each Celery worker of the local stack records on the task instances it runs.

Airflow stores `hostname_callable()` as a task instance's hostname: on a real fleet each worker is its own
machine, so the hostname says which worker ran which try. The local stack runs its workers on one machine and
points `[core] hostname_callable` here, with `AIRFLOW_OBS_WORKER_HOSTNAME` set per worker.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("AIRFLOW_OBS_WORKER_HOSTNAME") or socket.getfqdn()
