"""`python -m local_stack`: the repository's own stack (`make up`, `make down`, `make status`, `make incident`).

Checkout-only: the installed package's command line is `airflow-obs` (exporter, rules, dashboards, traces).
"""

from __future__ import annotations

import argparse
import sys

from airflow_obs.observability.settings import SettingsError as PluginSettingsError

from airflow_obs.cli import log_json_lines
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


def _cmd_capture(args: argparse.Namespace) -> int:
    log_json_lines()
    if args.kind == "smtp":
        from local_stack.captures.smtp_capture import serve_smtp_capture

        serve_smtp_capture(args.host, args.port, args.out)
    else:
        from local_stack.captures.http_capture import serve_http_capture

        serve_http_capture(args.kind, args.host, args.port, args.out)
    return 0


def _cmd_source_api(args: argparse.Namespace) -> int:
    from dag_suite.source_api import make_source_api_server

    from airflow_obs.serving import serve_until_stopped

    log_json_lines()
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
        print(f"incident: {exc}", file=sys.stderr)
        return 1
    # Some faults take a while to cause (a task fails its tries first): time from the start, and from when inject
    # returned, which a page can precede.
    print(
        f"first notification {report.seconds_from_start():.1f}s after the scenario began "
        f"({report.first_notification_seconds():+.1f}s from when its fault was in place)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the local stack and wait until every component is healthy")
    commands.add_parser("down", help="stop everything the local stack started (data is kept)")
    commands.add_parser("status", help="state and health of each component; exit 1 if any is unhealthy")
    commands.add_parser("ports", help="every port of the local stack and the variable that moves it")

    capture = commands.add_parser("capture", help="run a local alert capture (Slack, webhook or SMTP)")
    capture.add_argument("kind", choices=["slack", "webhook", "smtp"])
    capture.add_argument("--host", default=LOOPBACK)
    capture.add_argument("--port", type=int, required=True)
    capture.add_argument("--out", required=True, help="JSONL file that records every request")

    source_api = commands.add_parser("source-api", help="serve the orders source service the ETL DAG extracts from")
    source_api.add_argument("--host", default=LOOPBACK)
    source_api.add_argument("--port", type=int, default=0, help="default: AIRFLOW_OBS_SOURCE_API_PORT")

    incident = commands.add_parser(
        "incident", help="break the running local stack on purpose and show the alert arriving (list: scenarios)"
    )
    incident.add_argument("scenario", help="a scenario name, or `list`")
    incident.add_argument("--no-recover", action="store_true", help="leave the stack broken (recover by hand)")
    incident.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each notification")
    return parser


HANDLERS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "ports": _cmd_ports,
    "capture": _cmd_capture,
    "source-api": _cmd_source_api,
    "incident": _cmd_incident,
}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = HANDLERS[args.command](args)
    except (SettingsError, PluginSettingsError) as exc:
        print(f"python -m local_stack {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)
