"""The toolkit's command line: the local stack, the exporter, the alert captures and publishing dashboards."""

from __future__ import annotations

import argparse
import os
import sys

from observability.settings import SettingsError as PluginSettingsError

from local_stack.settings import LOOPBACK, PORTS, SettingsError, load_settings


def _cmd_up(args: argparse.Namespace) -> int:
    from local_stack.preflight import PreflightError
    from local_stack.secrets import redact
    from local_stack.stack import StackError, up

    settings = load_settings()
    try:
        up(settings)
    except (PreflightError, StackError, RuntimeError) as exc:
        # Messages may quote a tool's output (supervisord echoes its config lines): no secret may pass.
        print(f"make up failed: {redact(str(exc), settings)}", file=sys.stderr)
        return 1
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from local_stack.stack import down

    down(load_settings())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from local_stack.stack import print_status

    return 0 if print_status(load_settings()) else 1


def _cmd_ports(args: argparse.Namespace) -> int:
    settings = load_settings()
    for spec in PORTS:
        print(f"{spec.env_var:<34} {settings.ports[spec.component]:>6}  {spec.purpose}")
    return 0


def _log_json_lines() -> None:
    """The toolkit's long-running servers log as the plugin does: JSON lines through loguru, secrets redacted.

    Every standard logging record of the process goes that way (route_root): these processes are ours, unlike
    Airflow's, whose logging the plugin leaves alone. An invalid AIRFLOW_OBS_LOG_FORMAT stops them at start.
    """
    from observability.logs import setup_logging

    setup_logging(route_root=True)


def _cmd_exporter(args: argparse.Namespace) -> int:
    import dataclasses

    from airflow_exporter.config import ConfigError, load_config
    from airflow_exporter.database import AirflowSettingsError
    from airflow_exporter.server import serve

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"airflow-obs exporter: {exc}", file=sys.stderr)
        return 2
    _log_json_lines()
    if args.host:
        config = dataclasses.replace(config, host=args.host)
    try:
        serve(config, args.port or config.port or load_settings().ports["exporter"])
    except AirflowSettingsError as exc:
        print(f"airflow-obs exporter: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_capture(args: argparse.Namespace) -> int:
    _log_json_lines()
    if args.kind == "smtp":
        from local_stack.captures.smtp_capture import serve_smtp_capture

        serve_smtp_capture(args.host, args.port, args.out)
    else:
        from local_stack.captures.http_capture import serve_http_capture

        serve_http_capture(args.kind, args.host, args.port, args.out)
    return 0


def _cmd_source_api(args: argparse.Namespace) -> int:
    from dag_suite.source_api import make_source_api_server

    from local_stack.serving import serve_until_stopped

    _log_json_lines()
    server = make_source_api_server(args.host, args.port or load_settings().ports["source_api"])
    serve_until_stopped(server, "source-api")
    return 0


def _cmd_incident(args: argparse.Namespace) -> int:
    from local_stack.incidents.client import IncidentError
    from local_stack.incidents.runner import run_scenario
    from local_stack.incidents.scenarios import SCENARIOS, scenario

    if args.scenario == "list":
        for item in SCENARIOS.values():
            print(f"{item.name:<34} {', '.join(item.alerts):<32} {item.summary}")
        return 0
    settings = load_settings()
    try:
        chosen = scenario(args.scenario)
        print(f"incident {chosen.name}: {chosen.summary}")
        print(f"waiting up to {args.timeout:.0f}s for {', '.join(chosen.alerts)} on every sink its route names")
        report = run_scenario(
            settings,
            chosen,
            fire_timeout=args.timeout,
            resolve_timeout=args.timeout,
            recover=not args.no_recover,
            show=lambda arrival: print("  " + arrival.describe(), flush=True),
        )
    except IncidentError as exc:
        print(f"airflow-obs incident: {exc}", file=sys.stderr)
        return 1
    # Some faults take a while to cause (a task fails its tries first): time from the start, and from when inject
    # returned, which a page can precede.
    print(
        f"first notification {report.seconds_from_start():.1f}s after the scenario began "
        f"({report.first_notification_seconds():+.1f}s from when its fault was in place)"
    )
    return 0


def _stack_traces_hint() -> str:
    """Where the local stack keeps its spans: its Airflow has its own AIRFLOW_HOME, which a shell usually lacks."""
    try:
        stack_file = load_settings().airflow_home / "observability" / "traces.jsonl"
    except SettingsError:
        return ""
    return f"; the local stack's spans are in {stack_file}: add --file {stack_file}" if stack_file.is_file() else ""


def _cmd_trace(args: argparse.Namespace) -> int:
    from pathlib import Path

    from observability.settings import SettingsError as PluginSettingsError
    from observability.settings import settings
    from observability.trace_store import read_spans, run_traces
    from observability.waterfall import render_waterfall

    try:
        path = Path(args.file) if args.file else settings().traces_path
    except PluginSettingsError as exc:
        print(f"airflow-obs trace: {exc}", file=sys.stderr)
        return 2
    if not path.is_file():
        print(
            f"airflow-obs trace: no trace file at {path} (spans are written there when no OTEL_EXPORTER_OTLP_ENDPOINT"
            f" is set; AIRFLOW_OBS_TRACES_FILE or --file names another){_stack_traces_hint()}",
            file=sys.stderr,
        )
        return 1
    traces = run_traces(read_spans(path), args.dag_id, args.run_id)
    if not traces:
        wanted = f"dag_id={args.dag_id!r} run_id={args.run_id!r}"
        print(f"airflow-obs trace: no spans of {wanted} in {path}", file=sys.stderr)
        return 1
    # A run cleared under Airflow's tracing has one trace per clear: oldest first.
    ordered = sorted(traces.values(), key=lambda spans: min(span.start_time_unix_nano for span in spans))
    print("\n\n".join(render_waterfall(spans) for spans in ordered))
    return 0


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airflow_obs.dashboards_push import PushError, parse_datasource_uids, push

    # The token is read here and only handed to the client: it is never an argument (shell history, `ps`).
    token = os.environ.get("GRAFANA_TOKEN", "")
    mapping_items = args.datasource_uid or [
        item for item in os.environ.get("GRAFANA_DATASOURCE_UIDS", "").split(",") if item.strip()
    ]
    try:
        if not args.url:
            raise PushError("no Grafana URL: pass --url or set GRAFANA_URL (e.g. https://grafana.example.com)")
        pushed = push(
            args.url,
            token,
            Path(args.dir),
            folder_title=args.folder,
            folder_uid=args.folder_uid,
            datasource_uids=parse_datasource_uids(mapping_items),
        )
    except PushError as exc:
        print(f"airflow-obs dashboards push: {exc}", file=sys.stderr)
        return 1
    for item in pushed:
        print(f"pushed {item.uid} ({item.title}): {item.url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-obs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the local stack and wait until every component is healthy")
    commands.add_parser("down", help="stop everything the local stack started (data is kept)")
    commands.add_parser("status", help="state and health of each component; exit 1 if any is unhealthy")
    commands.add_parser("ports", help="every port of the local stack and the variable that moves it")

    exporter = commands.add_parser("exporter", help="serve the Prometheus exporter (/metrics, /healthz)")
    exporter.add_argument("--config", help="YAML config file (default: AIRFLOW_OBS_EXPORTER_CONFIG, if set)")
    exporter.add_argument("--host", help=f"default: the config's host, else {LOOPBACK}")
    exporter.add_argument(
        "--port", type=int, default=0, help="default: the config's port, else AIRFLOW_OBS_EXPORTER_PORT"
    )

    capture = commands.add_parser("capture", help="run a local alert capture (Slack, webhook or SMTP)")
    capture.add_argument("kind", choices=["slack", "webhook", "smtp"])
    capture.add_argument("--host", default=LOOPBACK)
    capture.add_argument("--port", type=int, required=True)
    capture.add_argument("--out", required=True, help="JSONL file that records every request")

    source_api = commands.add_parser("source-api", help="serve the orders source service the ETL DAG extracts from")
    source_api.add_argument("--host", default=LOOPBACK)
    source_api.add_argument("--port", type=int, default=0, help="default: AIRFLOW_OBS_SOURCE_API_PORT")

    trace = commands.add_parser("trace", help="print one DAG run's trace as a waterfall, from the local JSONL store")
    trace.add_argument("dag_id")
    trace.add_argument("run_id")
    trace.add_argument("--file", help="JSONL span file (default: AIRFLOW_OBS_TRACES_FILE, else under AIRFLOW_HOME)")
    incident = commands.add_parser(
        "incident", help="break the running local stack on purpose and show the alert arriving (list: scenarios)"
    )
    incident.add_argument("scenario", help="a scenario name, or `list`")
    incident.add_argument("--no-recover", action="store_true", help="leave the stack broken (recover by hand)")
    incident.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each notification")

    dashboards = commands.add_parser("dashboards", help="publish the dashboards to a Grafana")
    dashboard_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    push = dashboard_commands.add_parser(
        "push", help="upload dashboards/*.json to an existing Grafana (API token from GRAFANA_TOKEN)"
    )
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL"), help="Grafana base URL (default: GRAFANA_URL)")
    push.add_argument("--dir", default="dashboards", help="folder of dashboard JSON files (default: dashboards)")
    push.add_argument("--folder", default="Airflow", help="title of the Grafana folder, created if missing")
    push.add_argument("--folder-uid", help="find or create the folder by this uid instead of by title")
    push.add_argument(
        "--datasource-uid",
        action="append",
        metavar="TYPE=UID",
        help="the target's datasource uid for a type, e.g. prometheus=P1809F7CD0C75ACF3; repeatable"
        " (default: GRAFANA_DATASOURCE_UIDS, comma-separated)",
    )
    return parser


HANDLERS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "ports": _cmd_ports,
    "exporter": _cmd_exporter,
    "capture": _cmd_capture,
    "source-api": _cmd_source_api,
    "trace": _cmd_trace,
    "incident": _cmd_incident,
    "dashboards": _cmd_dashboards,
}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = HANDLERS[args.command](args)
    except (SettingsError, PluginSettingsError) as exc:
        print(f"airflow-obs {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)
