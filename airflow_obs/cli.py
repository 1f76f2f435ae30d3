"""`airflow-obs`, the toolkit's command line: the exporter, the shipped rules, dashboards and runbooks, traces.

The repository's own stack has its own command line (`python -m local_stack`, behind `make up`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from airflow_obs import package_data
from airflow_obs.observability.settings import SettingsError as PluginSettingsError


def log_json_lines() -> None:
    """The toolkit's long-running servers log as the plugin does: JSON lines through loguru, secrets redacted.

    Every standard logging record of the process goes that way (route_root): these processes are ours, unlike
    Airflow's, whose logging the plugin leaves alone. The format comes from AIRFLOW__OBSERVABILITY__LOG_FORMAT in the
    environment (not through Airflow's configuration: these processes do not load Airflow to log); an invalid one
    stops them at start.
    """
    from airflow_obs.observability.logs import setup_logging
    from airflow_obs.observability.settings import read_settings

    setup_logging(read_settings().log_format, route_root=True)


def _cmd_exporter(args: argparse.Namespace) -> int:
    import dataclasses

    from airflow_obs.exporter.config import DEFAULT_PORT, ConfigError, load_config
    from airflow_obs.exporter.database import AirflowSettingsError
    from airflow_obs.exporter.server import serve

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"airflow-obs exporter: {exc}", file=sys.stderr)
        return 2
    log_json_lines()
    if args.host:
        config = dataclasses.replace(config, host=args.host)
    try:
        serve(config, args.port or config.port or DEFAULT_PORT)
    except AirflowSettingsError as exc:
        print(f"airflow-obs exporter: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_trace(args: argparse.Namespace) -> int:
    from airflow_obs.observability.settings import settings
    from airflow_obs.observability.trace_store import read_spans, run_traces
    from airflow_obs.observability.waterfall import render_waterfall

    try:
        path = Path(args.file) if args.file else settings().traces_path
    except PluginSettingsError as exc:
        print(f"airflow-obs trace: {exc}", file=sys.stderr)
        return 2
    if not path.is_file():
        print(
            f"airflow-obs trace: no trace file at {path} (spans are written there when no OTEL_EXPORTER_OTLP_ENDPOINT"
            f" is set; AIRFLOW__OBSERVABILITY__TRACES_FILE or --file names another)",
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


def _cmd_rules_export(args: argparse.Namespace) -> int:
    from airflow_obs.alerting.render import write_rule_files

    out = Path(args.out)
    # Links and thresholds are the deployment's: AIRFLOW__OBSERVABILITY__AIRFLOW_URL and friends (as the plugin
    # reads them), AIRFLOW_OBS_ALERT_* for thresholds.
    for path in write_rule_files(out):
        print(f"wrote {path}")
    templates = out / "alertmanager-templates"
    shutil.copytree(package_data.ALERTMANAGER_TEMPLATES_DIR, templates, dirs_exist_ok=True)
    shutil.copy(package_data.ALERTMANAGER_ROUTING_FILE, out / "alertmanager.routes.yml")
    print(f"wrote {templates}/ and {out / 'alertmanager.routes.yml'} (routes to merge into your Alertmanager)")
    return 0


def _cmd_runbooks_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    shutil.copytree(package_data.RUNBOOKS_DIR, out, dirs_exist_ok=True)
    print(f"wrote {len(list(out.glob('*.md')))} runbooks to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-obs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    exporter = commands.add_parser("exporter", help="serve the Prometheus exporter (/metrics, /healthz)")
    exporter.add_argument("--config", help="YAML config file (default: AIRFLOW_OBS_EXPORTER_CONFIG, if set)")
    exporter.add_argument("--host", help="default: the config's host, else 127.0.0.1")
    exporter.add_argument("--port", type=int, default=0, help="default: the config's port, else 19112")
    exporter.set_defaults(handler=_cmd_exporter)

    trace = commands.add_parser("trace", help="print one DAG run's trace as a waterfall, from the local JSONL store")
    trace.add_argument("dag_id")
    trace.add_argument("run_id")
    trace.add_argument("--file", help="JSONL span file (default: [observability] traces_file, else under AIRFLOW_HOME)")
    trace.set_defaults(handler=_cmd_trace)

    rules = commands.add_parser("rules", help="the Prometheus alert and recording rules, for your Prometheus")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True)
    rules_export = rule_commands.add_parser(
        "export", help="write the rule files (links from AIRFLOW__OBSERVABILITY__*), Alertmanager templates and routes"
    )
    rules_export.add_argument("--out", required=True, help="folder to write into (created if missing)")
    rules_export.set_defaults(handler=_cmd_rules_export)

    runbooks = commands.add_parser("runbooks", help="the runbook of every alert, as markdown")
    runbook_commands = runbooks.add_subparsers(dest="runbooks_command", required=True)
    runbooks_export = runbook_commands.add_parser("export", help="copy the <Alert>.md runbooks into a folder")
    runbooks_export.add_argument("--out", required=True, help="folder to write into (created if missing)")
    runbooks_export.set_defaults(handler=_cmd_runbooks_export)

    dashboards = commands.add_parser("dashboards", help="publish the dashboards to a Grafana")
    dashboard_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    push = dashboard_commands.add_parser(
        "push", help="upload the dashboards' JSON to an existing Grafana (API token from GRAFANA_TOKEN)"
    )
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL"), help="Grafana base URL (default: GRAFANA_URL)")
    push.add_argument(
        "--dir",
        default=str(package_data.DASHBOARDS_DIR),
        help="folder of dashboard JSON files (default: the toolkit's dashboards)",
    )
    push.add_argument("--folder", default="Airflow", help="title of the Grafana folder, created if missing")
    push.add_argument("--folder-uid", help="find or create the folder by this uid instead of by title")
    push.add_argument(
        "--datasource-uid",
        action="append",
        metavar="TYPE=UID",
        help="the target's datasource uid for a type, e.g. prometheus=P1809F7CD0C75ACF3; repeatable"
        " (default: GRAFANA_DATASOURCE_UIDS, comma-separated)",
    )
    push.set_defaults(handler=_cmd_dashboards)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except PluginSettingsError as exc:
        print(f"airflow-obs {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)
