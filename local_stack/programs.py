"""The processes of the local stack, as data: what each runs, and which component it belongs to."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.secrets import flower_basic_auth, redis_password
from local_stack.settings import LOOPBACK, StackSettings

VENV_BIN = Path(sys.prefix) / "bin"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# AIRFLOW_OBS_EXECUTOR=celery runs this many workers, each with its own log-server port (component names).
CELERY_WORKER_LOG_PORTS = ("worker_log_server", "worker_2_log_server")
# Celery queue the workers consume and redis_exporter measures: Airflow's [operators] default_queue.
CELERY_QUEUE = "default"
# Flower forgets a worker silent this long; the AirflowCeleryWorkerLost alert watches for exactly that.
FLOWER_PURGE_OFFLINE_WORKERS_SECONDS = 30


@dataclass(frozen=True)
class Program:
    """One supervised process."""

    name: str
    command: list[str]
    airflow_env: bool = False
    user: str | None = None
    stopsignal: str = "TERM"
    extra_env: dict[str, str] = field(default_factory=dict)  # applied after Airflow's environment
    # A Celery worker stands in for a machine: one that dies stays down (and alerts) until `make up` restarts it.
    restart_on_crash: bool = True


@dataclass(frozen=True)
class CeleryWorker:
    """One Celery worker of the local stack; `hostname` is what Airflow records as the task instance's host."""

    number: int

    @property
    def program(self) -> str:
        return f"airflow-celery-worker-{self.number}"

    @property
    def hostname(self) -> str:
        # Workers of a real deployment sit on different machines; here a per-worker name tells their tries apart.
        return f"celery-worker-{self.number}"

    @property
    def celery_name(self) -> str:
        return f"{self.hostname}@{socket.gethostname()}"

    @property
    def log_port_component(self) -> str:
        return CELERY_WORKER_LOG_PORTS[self.number - 1]


CELERY_WORKERS = tuple(CeleryWorker(number) for number in range(1, len(CELERY_WORKER_LOG_PORTS) + 1))


def celery_workers(settings: StackSettings) -> list[CeleryWorker]:
    return list(CELERY_WORKERS) if settings.executor == "celery" else []


def redis_config_file(settings: StackSettings) -> Path:
    return settings.generated_dir / "redis.conf"


def postgres_data_dir(settings: StackSettings) -> Path:
    return settings.home / "postgres" / "data"


def postgres_socket_dir(settings: StackSettings) -> Path:
    return settings.home / "postgres" / "sock"


def stack_programs(settings: StackSettings) -> list[Program]:
    """Every process `make up` supervises, in start order."""
    port = settings.ports
    gen = settings.generated_dir
    obs = str(VENV_BIN / "airflow-obs")
    stack = [str(VENV_BIN / "python"), "-m", "local_stack"]
    airflow = str(VENV_BIN / "airflow")
    programs: list[Program] = []
    if settings.db == "postgres":
        programs.append(
            Program(
                "postgres",
                [
                    str(POSTGRES_BIN / "postgres"),
                    "-D",
                    str(postgres_data_dir(settings)),
                    "-p",
                    str(port["postgres"]),
                    "-k",
                    str(postgres_socket_dir(settings)),
                    "-c",
                    f"listen_addresses={LOOPBACK}",
                ],
                user="postgres" if os.geteuid() == 0 else None,
                # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
                stopsignal="INT",
            )
        )
        programs.append(_postgres_exporter(settings))
    if settings.executor == "celery":
        programs.append(
            Program("redis", ["/usr/bin/redis-server", str(redis_config_file(settings))], stopsignal="TERM")
        )
    programs += [
        Program("airflow-api-server", [airflow, "api-server"], airflow_env=True),
        Program("airflow-scheduler", [airflow, "scheduler"], airflow_env=True),
        Program("airflow-dag-processor", [airflow, "dag-processor"], airflow_env=True),
        Program("airflow-triggerer", [airflow, "triggerer"], airflow_env=True),
        *_celery_programs(settings),
        Program("exporter", [obs, "exporter", "--host", LOOPBACK, "--port", str(port["exporter"])], airflow_env=True),
        Program(
            "prometheus",
            [
                "/usr/bin/prometheus",
                f"--config.file={gen / 'prometheus.yml'}",
                f"--storage.tsdb.path={settings.home / 'prometheus'}",
                f"--web.listen-address={LOOPBACK}:{port['prometheus']}",
                # Each alert's generatorURL (its "source" link) points here (the default is the machine's hostname).
                f"--web.external-url={settings.url('prometheus')}",
                "--web.enable-lifecycle",
            ],
        ),
        Program(
            "alertmanager",
            [
                "/usr/bin/prometheus-alertmanager",
                f"--config.file={gen / 'alertmanager.yml'}",
                f"--storage.path={settings.home / 'alertmanager'}",
                f"--web.listen-address={LOOPBACK}:{port['alertmanager']}",
                # Silence links in notifications point here (the default is the machine's hostname).
                f"--web.external-url={settings.url('alertmanager')}",
                "--cluster.listen-address=",
            ],
        ),
        Program(
            "node-exporter",
            ["/usr/bin/prometheus-node-exporter", f"--web.listen-address={LOOPBACK}:{port['node_exporter']}"],
        ),
    ]
    programs.append(
        Program(
            "source-api",
            [*stack, "source-api", "--host", LOOPBACK, "--port", str(port["source_api"])],
            extra_env={"PYTHONUNBUFFERED": "1"},
        )
    )
    for kind in ("slack", "webhook", "smtp"):
        programs.append(
            Program(
                f"{kind}-capture",
                [
                    *stack,
                    "capture",
                    kind,
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(port[f"{kind}_capture"]),
                    "--out",
                    str(settings.capture_file(kind)),
                ],
                extra_env={"PYTHONUNBUFFERED": "1"},
            )
        )
    return programs


def _postgres_exporter(settings: StackSettings) -> Program:
    # Not at the top: airflow_env loads Airflow (through dag_suite), and modules such as throwaway_postgres import
    # this one for its paths before a test has pointed Airflow at its own metadata DB.
    from local_stack.airflow_env import metadata_db_conn_uri

    return Program(
        "postgres-exporter",
        [
            "/usr/bin/prometheus-postgres-exporter",
            f"--web.listen-address={LOOPBACK}:{settings.ports['postgres_exporter']}",
        ],
        # The DSN holds the password: in the (owner-only) supervisor config, never on a command line.
        extra_env={"DATA_SOURCE_NAME": metadata_db_conn_uri(settings) + "?sslmode=disable"},
    )


def _celery_programs(settings: StackSettings) -> list[Program]:
    """Two workers, Flower (their liveness and activity as metrics) and redis_exporter (the queue's depth)."""
    if settings.executor != "celery":
        return []
    airflow = str(VENV_BIN / "airflow")
    workers = celery_workers(settings)
    concurrency = max(1, settings.parallelism // len(workers))
    programs = [
        Program(
            worker.program,
            [
                airflow,
                "celery",
                "worker",
                "--celery-hostname",
                worker.celery_name,
                "--concurrency",
                str(concurrency),
                "--queues",
                CELERY_QUEUE,
            ],  # fmt: skip
            airflow_env=True,
            extra_env={
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.ports[worker.log_port_component]),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "local_stack.worker_identity.hostname",
                "AIRFLOW_OBS_WORKER_HOSTNAME": worker.hostname,
            },
            restart_on_crash=False,
        )
        for worker in workers
    ]
    programs.append(
        Program(
            "airflow-celery-flower",
            [airflow, "celery", "flower", "--hostname", LOOPBACK, "--port", str(settings.ports["flower"])],
            airflow_env=True,
            extra_env={
                "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": flower_basic_auth(settings),
                "FLOWER_PURGE_OFFLINE_WORKERS": str(FLOWER_PURGE_OFFLINE_WORKERS_SECONDS),
            },
        )
    )
    programs.append(
        Program(
            "redis-exporter",
            [
                "/usr/bin/prometheus-redis-exporter",
                f"--redis.addr=redis://{LOOPBACK}:{settings.ports['redis']}",
                f"--web.listen-address={LOOPBACK}:{settings.ports['redis_exporter']}",
                f"--check-single-keys=db0={CELERY_QUEUE}",
            ],
            extra_env={"REDIS_PASSWORD": redis_password(settings)},
        )
    )
    return programs
