"""The processes of the local stack, as data: what each runs, and which component it belongs to."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.settings import LOOPBACK, StackSettings

VENV_BIN = Path(sys.prefix) / "bin"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Program:
    """One supervised process."""

    name: str
    command: list[str]
    airflow_env: bool = False
    user: str | None = None
    stopsignal: str = "TERM"
    extra_env: dict[str, str] = field(default_factory=dict)


def postgres_data_dir(settings: StackSettings) -> Path:
    return settings.home / "postgres" / "data"


def postgres_socket_dir(settings: StackSettings) -> Path:
    return settings.home / "postgres" / "sock"


def stack_programs(settings: StackSettings) -> list[Program]:
    """Every process `airflow-obs up` supervises, in start order."""
    port = settings.ports
    gen = settings.generated_dir
    obs = str(VENV_BIN / "airflow-obs")
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
    programs += [
        Program("airflow-api-server", [airflow, "api-server"], airflow_env=True),
        Program("airflow-scheduler", [airflow, "scheduler"], airflow_env=True),
        Program("airflow-dag-processor", [airflow, "dag-processor"], airflow_env=True),
        Program("airflow-triggerer", [airflow, "triggerer"], airflow_env=True),
        Program("exporter", [obs, "exporter", "--host", LOOPBACK, "--port", str(port["exporter"])], airflow_env=True),
        Program(
            "prometheus",
            [
                "/usr/bin/prometheus",
                f"--config.file={gen / 'prometheus.yml'}",
                f"--storage.tsdb.path={settings.home / 'prometheus'}",
                f"--web.listen-address={LOOPBACK}:{port['prometheus']}",
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
            [obs, "source-api", "--host", LOOPBACK, "--port", str(port["source_api"])],
            extra_env={"PYTHONUNBUFFERED": "1"},
        )
    )
    for kind in ("slack", "webhook", "smtp"):
        programs.append(
            Program(
                f"{kind}-capture",
                [
                    obs,
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
