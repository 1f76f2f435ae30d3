"""The paging sink of the listeners: a task's final failure, a run that fails without one, a DAG that recovers.

It sees every state change Airflow reports to listeners, in every process, for every DAG (no DAG code needed):
- a try failing for good in its task runner (the error text is known there);
- a try the scheduler fails for the runner: its process was killed (SIGKILL, OOM), it stopped heartbeating,
  or the executor reported it finished while the database still said running;
- a try that failed with no listener hearing it (killed before it could report, its supervisor reporting the
  state): the scheduler's failure sweep (failure_sweep.py) pages it from Airflow's audit log;
- a try set to failed in the UI or REST API (the api-server's listener);
- a run failing with no task failing for good: `dagrun_timeout`, deadlock (the scheduler); a run set failed by
  hand pages only for the tasks it killed while they ran;
- a run succeeding: the scheduler's reconciler resolves the DAG's alerts at once.
A try that Airflow will retry pages nobody, however it ended (a killed try with retries left included).

Each page names what the DAG's failure affects downstream and any failing DAG upstream of it (impact.py, one
bounded read of Prometheus per DAG). In a task runner the page is sent before the listener returns, within
`notify_timeout_seconds` plus that read's IMPACT_READ_SECONDS; everywhere else
it goes to the outbox's thread, so no scheduler loop or API request waits on Alertmanager or Slack.
"""

from __future__ import annotations

import logging
import sys
import time

from airflow_obs.observability import failure_sweep, tracing
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.impact import Impact, read_impact
from airflow_obs.observability.notify import alerts, messages, outbox, router
from airflow_obs.observability.notify.delivery import redeliver_spooled
from airflow_obs.observability.notify.redaction import redact
from airflow_obs.observability.notify.spool import Spool
from airflow_obs.observability.notify.state import DagFailures, PagedTries, paged_dir, state_dir
from airflow_obs.observability.settings import PluginSettings, settings

log = logging.getLogger("airflow_obs.notify")

# Share of a task runner's budget that redelivering older messages may use after its own page.
REDELIVERY_SHARE = 0.5


def in_task_runner() -> bool:
    """True in a task's own process (and in-process under dag.test()): the supervisor's channel is set."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _dispatch(name: str, work) -> None:
    if in_task_runner():
        work()
    else:
        outbox.OUTBOX.submit(name, work)


def _remember_direct_page(current: PluginSettings, where: str, dag_id: str, run_id: str, identity: str = "") -> None:
    """A page that bypassed Alertmanager gets its "recovered" message from this process's host, directly too; and
    the scheduler's failure sweep, which asks Alertmanager what is paged, must learn of it here."""
    if where == router.DIRECT:
        DagFailures(state_dir(current)).remember(dag_id, run_id)
    if identity and where in (router.DIRECT, router.SPOOLED):
        PagedTries(paged_dir(current)).remember(identity)


def _task_page(current: PluginSettings, event: TaskEvent, impact: Impact) -> router.Page:
    trace_id = messages.trace_id_for(event.dag_id, event.run_id)

    def direct(secrets: tuple[str, ...]) -> messages.Notification:
        redacted = TaskEvent(**{**event.__dict__, "error": redact(event.error, secrets)})
        return messages.task_notification(current, redacted, messages.TASK_FAILED, trace_id, impact)

    return router.Page(
        alerts.task_failed(current, event, trace_id, cause=failure_sweep.cause_of(event.error), impact=impact),
        failure_sweep.identity(event.dag_id, event.run_id, event.task_id, event.map_index, event.try_number),
        direct,
    )


def page_task_failures(events: list[TaskEvent]) -> list[str]:
    """Page for tries that failed for good, now, together; returns where each page went (router.ALERTMANAGER...)."""
    current = settings()
    # What each DAG affects, read once per DAG: the failure sweep pages many tries of a few DAGs at once.
    impacts = {dag_id: read_impact(current, dag_id) for dag_id in dict.fromkeys(event.dag_id for event in events)}
    pages = [_task_page(current, event, impacts[event.dag_id]) for event in events]
    started = time.monotonic()
    where = router.page(current, pages)
    seconds = round(time.monotonic() - started, 3)
    for event, item, went in zip(events, pages, where, strict=True):
        _remember_direct_page(current, went, event.dag_id, event.run_id, item.identity)
        if went != router.DUPLICATE:
            # A span event while the try's span is still open (the traces sink runs after this one).
            tracing.add_event(
                event,
                "notification",
                {"airflow_obs.alert": item.alert.name, "airflow_obs.routed_to": went, "airflow_obs.seconds": seconds},
            )
    return where


def page_task_failure(event: TaskEvent) -> str:
    """Page for a try that failed for good, now; returns where the page went (router.ALERTMANAGER...)."""
    return page_task_failures([event])[0]


def _redeliver_in_task_runner() -> None:
    """Worker hosts may have no long-lived plugin process: a task's end is their chance to redeliver the spool."""
    current = settings()
    if not Spool(current.spool_path).waiting():
        return
    from airflow_obs.observability.reconciler import redelivery_senders

    redeliver_spooled(
        settings=current,
        senders=redelivery_senders(current),
        budget_seconds=current.notify_timeout_seconds * REDELIVERY_SHARE,
    )


def record_task_event(event: TaskEvent) -> None:
    """Page on a final failure (state `failed`); nothing for retries, successes or skips."""
    if event.state == "failed":
        if failure_sweep.cause_of(event.error) and not in_task_runner():
            # The scheduler failed a try its runner never reported: its failure sweep pages it with the others
            # one cause killed (failure_sweep.py), a few seconds from now.
            log.info("try %s.%s of %s ended without reporting: the failure sweep pages it", event.dag_id,
                     event.task_id, event.run_id)  # fmt: skip
            return
        _dispatch(f"page {event.dag_id}.{event.task_id}", lambda: page_task_failure(event))
    if event.state in ("success", "failed", "up_for_retry") and in_task_runner():
        _redeliver_in_task_runner()


def page_run_failure(event: DagRunEvent) -> str:
    """Page for a run that failed with no task failing for good, now; returns where the page went."""
    current = settings()
    why = messages.run_failure_reason(event.error or None)
    trace_id = messages.trace_id_for(event.dag_id, event.run_id)
    impact = read_impact(current, event.dag_id)
    alert = alerts.dag_run_failed(current, event, why, trace_id, impact)

    def direct(secrets: tuple[str, ...]) -> messages.Notification:
        return messages.run_failure_notification(current, event, redact(why, secrets), trace_id, impact)

    (where,) = router.page(current, [router.Page(alert, f"run\x1f{event.dag_id}\x1f{event.run_id}", direct)])
    _remember_direct_page(current, where, event.dag_id, event.run_id)
    return where


def recover_dag(event: DagRunEvent) -> None:
    """A run succeeded: end the DAG's alerts now; after a page that bypassed Alertmanager, say so directly."""
    current = settings()
    if current.routes_through_alertmanager:
        from airflow_obs.observability.reconciler import reconcile_now

        reconcile_now(current, event.dag_id)
    failure = DagFailures(state_dir(current)).take(event.dag_id)
    if failure is None:
        return
    trace_id = messages.trace_id_for(event.dag_id, event.run_id)

    def direct(secrets: tuple[str, ...]) -> messages.Notification:
        failed_run = redact(str(failure.get("run_id") or ""), secrets)
        return messages.recovery_notification(current, event, failed_run, trace_id)

    router.page_directly(current, f"recovered\x1f{event.dag_id}\x1f{event.run_id}", direct)


def record_dag_run_event(event: DagRunEvent) -> None:
    """Page for a run that failed with no task failing for good; resolve the DAG's alerts when a run succeeds."""
    if event.state == "failed":
        if event.error == messages.TASK_FAILURE_REASON or messages.MANUAL_REASON in event.error:
            # A task that failed for good has paged; a run failed by hand is someone's decision, and the tasks it
            # killed while they ran have paged as failed tries. The exporter's DAG alert remains for what is left.
            if not settings().routes_through_alertmanager:
                DagFailures(state_dir(settings())).remember(event.dag_id, event.run_id)
            return
        _dispatch(f"page run of {event.dag_id}", lambda: page_run_failure(event))
    elif event.state == "success":
        _dispatch(f"recovery of {event.dag_id}", lambda: recover_dag(event))
