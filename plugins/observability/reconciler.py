"""The scheduler's reconciler: ends the plugin's alerts once what they report has recovered, and redelivers the spool.

Every `reconcile_interval_seconds`, on the outbox thread of each scheduler (several schedulers do the same
work; Alertmanager merges their posts):
1. redeliver what the spool holds (a sink or Alertmanager back after an outage gets its messages within a
   redelivery backoff, at most 30 s, plus one interval);
2. read the plugin's unresolved alerts back from Alertmanager (one GET), and the database facts that decide them:
   - AirflowTaskFailed ends when that task later succeeded (in any run: cleared, re-run, marked success) or a
     later run of its DAG succeeded;
   - AirflowDagRunFailed ends when a later run of its DAG succeeded;
   - an alert still failing is renewed at half its lifetime (alerts.FIRING_TTL);
   - a DAG whose alert ended gets the AirflowDagRecovered marker, held while a run of it is active and ended when a
     run of it fails again: the exporter's DAG-level alerts stay muted until Prometheus has seen the success;
3. post the ended, renewed and marker alerts (spooled while Alertmanager is down);
4. page the tries that failed for good with no listener hearing them (failure_sweep.py).
A DAG-run success also runs step 2 at once for that DAG (paging.py), so "resolved" follows within seconds.

Cost per pass: one Alertmanager GET, then three indexed queries for the DAGs and tasks those alerts name
(dag_run by `dag_id_state`, task_instance by `ti_state_lkp`), capped at MAX_ALERTS alerts, and the log table's
rows added since the previous pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from airflow_obs.observability.failure_sweep import FailureSweep
from airflow_obs.observability.notify import alerts, router
from airflow_obs.observability.notify.alertmanager import SINK, AlertmanagerAPI, alertmanager_sink
from airflow_obs.observability.notify.delivery import redeliver_spooled
from airflow_obs.observability.notify.retries import DeliveryError, Sender
from airflow_obs.observability.notify.sinks import prepare_sinks
from airflow_obs.observability.notify.state import PagedTries, paged_dir
from airflow_obs.observability.settings import PluginSettings

log = logging.getLogger("airflow_obs.notify")

MAX_ALERTS = 500
ACTIVE_RUN_STATES = ("queued", "running")
# The scheduler's sweep of failures no listener reported: how far it has read Airflow's log table.
SWEEP = FailureSweep()


@dataclass
class DagFacts:
    last_success: datetime | None = None
    last_failure: datetime | None = None
    active: bool = False


@dataclass
class Facts:
    """What the database says about the DAGs and tasks that unresolved alerts name."""

    dags: dict[str, DagFacts] = field(default_factory=dict)
    task_success: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def dag(self, dag_id: str) -> DagFacts:
        return self.dags.get(dag_id) or DagFacts()


def _after(moment: datetime | None, since: datetime) -> bool:
    if moment is None:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=since.tzinfo)
    return moment > since


def _failed_at(alert: alerts.Alert) -> datetime:
    return alerts.parse_iso(alert.annotations.get(alerts.FAILED_AT, "")) or alert.starts_at


def decide(firing: Iterable[alerts.Alert], facts: Facts, settings: PluginSettings, now: datetime) -> list[alerts.Alert]:
    """The alerts to post: ended ones, renewed ones and recovery markers. Pure: no I/O."""
    posts: list[alerts.Alert] = []
    firing = list(firing)
    recovered: dict[str, alerts.Alert] = {}
    markers = {alert.labels["dag_id"] for alert in firing if alert.name == alerts.DAG_RECOVERED}
    for alert in firing:
        dag_id = alert.labels["dag_id"]
        dag = facts.dag(dag_id)
        if alert.name == alerts.DAG_RECOVERED:
            if _after(dag.last_failure, alert.starts_at):
                posts.append(alert.ended(now))  # it failed again: the exporter's alerts may speak for it
            elif dag.active and alert.ends_at - now < alerts.RECOVERY_HOLD / 2:
                posts.append(alert.renewed(now, alerts.RECOVERY_HOLD))
            continue
        since = _failed_at(alert)
        ok = _after(dag.last_success, since)
        if alert.name == alerts.TASK_FAILED:
            ok = ok or _after(facts.task_success.get((dag_id, alert.labels.get("task_id", ""))), since)
        if ok:
            posts.append(alert.ended(now))
            recovered.setdefault(dag_id, alert)
        elif alert.ends_at - now < alerts.FIRING_TTL / 2:
            posts.append(alert.renewed(now))
    for dag_id, alert in recovered.items():
        if dag_id not in markers:
            labels = alert.labels
            owner, team = labels.get("owner", ""), labels.get("team", "")
            posts.append(alerts.dag_recovered(settings, dag_id, owner, team, "", at=now))
    return posts


def read_facts(session, dag_ids: set[str], tasks: set[tuple[str, str]]) -> Facts:
    """Three indexed queries; Airflow's models are imported here because only a scheduler calls this."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import func, select, tuple_

    run, ti = DagRun.__table__.c, TaskInstance.__table__.c
    facts = Facts({dag_id: DagFacts() for dag_id in dag_ids})
    if not dag_ids:
        return facts
    ended = (
        select(run.dag_id, run.state, func.max(run.end_date))
        .where(run.dag_id.in_(dag_ids), run.state.in_(("success", "failed")))
        .group_by(run.dag_id, run.state)
    )
    for dag_id, state, end in session.execute(ended):
        if state == "success":
            facts.dags[dag_id].last_success = end
        else:
            facts.dags[dag_id].last_failure = end
    active = select(run.dag_id).where(run.dag_id.in_(dag_ids), run.state.in_(ACTIVE_RUN_STATES)).distinct()
    for (dag_id,) in session.execute(active):
        facts.dags[dag_id].active = True
    if tasks:
        succeeded = (
            select(ti.dag_id, ti.task_id, func.max(ti.end_date))
            .where(tuple_(ti.dag_id, ti.task_id).in_(sorted(tasks)), ti.state == "success")
            .group_by(ti.dag_id, ti.task_id)
        )
        for dag_id, task_id, end in session.execute(succeeded):
            if end is not None:
                facts.task_success[(dag_id, task_id)] = end
    return facts


def _matcher_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _session_factory() -> Callable[[], AbstractContextManager]:
    from airflow.utils.session import create_session

    return create_session


def firing_alerts(current: PluginSettings, api: AlertmanagerAPI, dag_id: str | None = None) -> list[alerts.Alert]:
    """The plugin's unresolved alerts in Alertmanager (of one DAG, or all); raises DeliveryError if it is down."""
    matchers = ['alertname=~"' + "|".join(alerts.PLUGIN_ALERTS) + '"']
    if dag_id is not None:
        matchers.append(f'dag_id="{_matcher_value(dag_id)}"')
    if current.environment:
        matchers.append(f'environment="{_matcher_value(current.environment)}"')
    found = api.alerts(matchers, current.notify_timeout_seconds)
    return [alert for alert in map(alerts.from_alertmanager, found) if alert is not None][:MAX_ALERTS]


def reconcile_now(
    current: PluginSettings,
    dag_id: str | None = None,
    *,
    api: AlertmanagerAPI | None = None,
    session_factory: Callable[[], AbstractContextManager] | None = None,
    sweep: FailureSweep | None = None,
) -> list[alerts.Alert]:
    """One pass over the unresolved alerts (of one DAG, or all), and, with `sweep`, over the failures no listener
    reported; returns what it posted to end or renew alerts."""
    firing: list[alerts.Alert] | None = None
    if current.routes_through_alertmanager:
        try:
            firing = firing_alerts(current, api or AlertmanagerAPI(current.alertmanager_api_url), dag_id)
        except DeliveryError as error:
            # Without knowing what is paged, neither resolving nor sweeping is safe: both wait for the next pass.
            log.warning("cannot read the plugin's alerts back from Alertmanager (%s): reconciled later", error)
            return []
    dag_ids = {alert.labels["dag_id"] for alert in firing or ()}
    tasks = {
        (alert.labels["dag_id"], alert.labels["task_id"])
        for alert in firing or ()
        if alert.name == alerts.TASK_FAILED and "task_id" in alert.labels
    }
    with (session_factory or _session_factory())() as session:
        facts = read_facts(session, dag_ids, tasks)
        unreported = (
            sweep.unreported(session, firing, PagedTries(paged_dir(current)), alerts.now_utc()) if sweep else []
        )
    posts = decide(firing or (), facts, current, alerts.now_utc())
    router.update(current, posts)
    if unreported:
        from airflow_obs.observability.paging import page_task_failures  # paging calls this module: imported on use

        page_task_failures(unreported)  # in one request: one notification for what one cause failed
    return posts


def redelivery_senders(current: PluginSettings) -> dict[str, Sender]:
    """Every destination a spooled message may be for: the configured sinks, and Alertmanager."""
    senders = dict(prepare_sinks(current).senders)
    if current.routes_through_alertmanager:
        senders[SINK] = alertmanager_sink(current.alertmanager_api_url).send
    return senders


def run_once(current: PluginSettings) -> None:
    """The scheduler's periodic duty. Each step logs its own failures; neither stops the other."""
    try:
        redeliver_spooled(settings=current, senders=redelivery_senders(current))
    except Exception:
        log.error("redelivering the spool failed", exc_info=True)
    try:
        reconcile_now(current, sweep=SWEEP)
    except Exception:
        log.error("reconciling the plugin's alerts failed", exc_info=True)
