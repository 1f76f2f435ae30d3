"""A synthetic Airflow metadata history on PostgreSQL: a constant workload whose history deepens with size.

DAGs of five chained tasks, 10% hourly and the rest daily, run back in time from now. Asking for more
task instances adds older days, never more DAGs: in production the workload is fixed and history piles
up. Bulk rows come from set-based SQL (INSERT ... SELECT over generate_series); every random choice
in SQL is hashint8extended(key, seed), so a seed always gives the same history.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, create_engine, insert, text

# (task_id, operator) of every DAG, in dependency order; the last one is skipped by a branch in some runs.
TASKS = (
    ("extract", "PythonOperator"),
    ("validate", "SQLColumnCheckOperator"),
    ("transform", "SQLExecuteQueryOperator"),
    ("load", "PythonOperator"),
    ("notify", "EmptyOperator"),
)
POOLS = {"default_pool": 128, "etl_pool": 32, "ml_pool": 8, "reporting_pool": 16}
POOL_WEIGHTS = (0.70, 0.15, 0.07, 0.08)
TEAMS = ("data-eng", "analytics", "ml", "finance", "platform")
DOMAIN_TAGS = ("ingest", "reporting", "features", "billing", "quality")
HOURLY_SHARE = 0.10
RUNNING_SHARE, QUEUED_SHARE, PAUSED_SHARE, DEADLINE_SHARE = 0.03, 0.015, 0.01, 0.10
LATE_DAGS, IMPORT_ERRORS = 3, 3
# The state of the task a running run is at, cycled over running DAGs.
ACTIVE_TASK_STATES = ("running", "running", "queued", "scheduled", "deferred", "up_for_retry")
MAX_TASK_SECONDS = 1800.0
BUNDLE = "bench-bundle"
EXECUTED, ENDED, DECIDED = (
    "('success', 'failed', 'up_for_retry', 'running', 'deferred')",
    "('success', 'failed', 'up_for_retry')",
    "('skipped', 'upstream_failed')",
)


def create_schema(engine: Engine) -> None:
    """Airflow's tables and indexes from its models: the same ones the migrations build, in under a second."""
    from airflow.models import import_all_models
    from airflow.models.base import Base

    import_all_models()
    Base.metadata.create_all(engine)


def load_synthetic_history(url: str, task_instances: int, dags: int = 1000, seed: int = 0) -> dict[str, int]:
    """Fill an empty metadata DB at `url` with ~task_instances TIs over `dags` DAGs; returns rows inserted per table."""
    if dags < 10 or task_instances < len(TASKS):
        raise ValueError("need at least 10 DAGs and one run's worth of task instances")
    engine = create_engine(url)
    try:
        create_schema(engine)
        now = datetime.now(UTC).replace(microsecond=0)
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL TIME ZONE 'UTC'"))
            counts = _load(connection, _dag_shapes(dags, random.Random(seed), now), task_instances, seed, now)  # noqa: S311
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # As autovacuum would have: statistics for the planner, visibility map and hint bits set.
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return counts


def _dag_shapes(dags: int, rng: random.Random, now: datetime) -> list[dict]:
    order = list(range(dags))
    rng.shuffle(order)
    hourly = set(order[: max(1, round(dags * HOURLY_SHARE))])
    rng.shuffle(order)
    # At least one running DAG per live task state, so even a tiny history shows each of them.
    running_dags = max(len(ACTIVE_TASK_STATES), round(dags * RUNNING_SHARE))
    cuts = [running_dags] + [max(1, round(dags * share)) for share in (QUEUED_SHARE, PAUSED_SHARE)] + [LATE_DAGS]
    groups, start = [], 0
    for size in cuts:
        groups.append(order[start : start + size])
        start += size
    running, queued, paused, late = (set(group) for group in groups)
    with_deadline = set(rng.sample(range(dags), max(1, round(dags * DEADLINE_SHARE))))
    running_order = sorted(running)
    shapes = []
    for i in range(dags):
        offset = rng.randrange(60 if i in hourly else 24 * 60)
        if i in running or i in queued:
            # Current activity started minutes ago, as it does on a healthy deployment.
            minutes_ago = rng.randrange(2, 50 if i in hourly else 90)
            offset = (now.hour * 60 + now.minute - minutes_ago) % (60 if i in hourly else 24 * 60)
        team = TEAMS[i % len(TEAMS)]
        pool = rng.choices(list(POOLS), POOL_WEIGHTS)[0]
        flaky = rng.random() < 0.05
        shapes.append(
            {
                "dag_index": i,
                "dag_id": f"{team.replace('-', '_')}_pipeline_{i:04d}",
                "team": team,
                "owner": rng.choice(("airflow", f"{team}-team", f"{team}-oncall")),
                "domain": DOMAIN_TAGS[rng.randrange(len(DOMAIN_TAGS))],
                "hourly": i in hourly,
                "offset_minutes": offset,
                "scale": math.exp(rng.uniform(math.log(5), math.log(300))),
                **{f"m{t}": rng.uniform(0.2, 3.0) for t in range(1, len(TASKS) + 1)},
                "failure_rate": 0.20 if flaky else 0.035,
                "skips_notify": rng.random() < 0.5,
                "pool": pool,
                "queue": "ml" if pool == "ml_pool" else "default",
                "role": "running" if i in running else "queued" if i in queued else "finished",
                "paused": i in paused,
                "late": i in late,
                "has_deadline": i in with_deadline,
                "active_task": rng.randrange(1, len(TASKS) + 1),
                "active_state": ACTIVE_TASK_STATES[running_order.index(i) % len(ACTIVE_TASK_STATES)]
                if i in running
                else "",
            }
        )
    return shapes


def _load(connection: Connection, shapes: list[dict], task_instances: int, seed: int, now: datetime) -> dict[str, int]:
    counts = _load_reference_rows(connection, shapes, now)
    task_columns = ", ".join(f"m{t} float8" for t in range(1, len(TASKS) + 1))
    connection.execute(
        text(
            "CREATE TEMP TABLE bench_dag (dag_index int, dag_id text, hourly bool, offset_minutes int, scale float8, "
            f"{task_columns}, failure_rate float8, skips_notify bool, pool text, queue text, role text, late bool, "
            "has_deadline bool, active_task int, active_state text) ON COMMIT DROP"
        )
    )
    columns = ["dag_index", "dag_id", "hourly", "offset_minutes", "scale"] + [f"m{t}" for t in range(1, len(TASKS) + 1)]
    columns += ["failure_rate", "skips_notify", "pool", "queue", "role", "late", "has_deadline"]
    columns += ["active_task", "active_state"]
    connection.execute(
        text(f"INSERT INTO bench_dag ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"),
        [{c: shape[c] for c in columns} for shape in shapes],
    )
    runs = max(1, round(task_instances / len(TASKS)))
    hourly = sum(shape["hourly"] for shape in shapes)
    days = math.ceil(runs / (hourly * 24 + len(shapes) - hourly)) + 2
    params = {"now": now, "runs": runs, "days": days}
    connection.execute(text(_stage_runs_sql(seed)), params)
    with _indexes_rebuilt_after(connection, "dag_run"):
        counts["dag_run"] = connection.execute(text(_INSERT_RUNS), params).rowcount
    connection.execute(text("SELECT setval('dag_run_id_seq', (SELECT max(id) FROM dag_run))"))
    with _indexes_rebuilt_after(connection, "task_instance"):
        counts["task_instance"] = connection.execute(text(_insert_task_instances_sql(seed)), params).rowcount
    connection.execute(text(_stage_deadlines_sql(seed)), params)
    counts["callback"] = connection.execute(text(_INSERT_CALLBACKS)).rowcount
    counts["deadline"] = connection.execute(text(_INSERT_DEADLINES)).rowcount
    return counts


@contextmanager
def _indexes_rebuilt_after(connection: Connection, table: str) -> Iterator[None]:
    """Drop the table's plain (non-constraint) indexes for the block and rebuild them from their own definitions.

    Building an index once is several times faster than maintaining it row by row during a bulk insert.
    """
    definitions = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = :table "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass))"
        ),
        {"table": table},
    ).all()
    for name, _ in definitions:
        connection.execute(text(f'DROP INDEX "{name}"'))
    yield
    connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for _, definition in definitions:
        connection.execute(text(definition))


def _load_reference_rows(connection: Connection, shapes: list[dict], now: datetime) -> dict[str, int]:
    """Rows bounded by the number of DAGs, pools and components, inserted through Airflow's own tables."""
    from airflow.jobs.job import Job
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.errors import ParseImportError
    from airflow.models.pool import Pool
    from airflow.models.tasklog import LogTemplate

    def add(table, rows: list[dict]) -> int:
        # One multi-row VALUES statement: an executemany's rowcount would be its last batch's only.
        return connection.execute(insert(table).values(rows)).rowcount

    counts = {"dag_bundle": add(DagBundleModel.__table__, [{"name": BUNDLE, "active": True, "last_refreshed": now}])}
    counts["log_template"] = add(
        LogTemplate.__table__,
        [
            {
                "id": 1,
                "filename": "dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/"
                "attempt={{ try_number|default(ti.try_number) }}.log",
                "elasticsearch_id": "{dag_id}-{task_id}-{run_id}",
                "created_at": now,
            }
        ],
    )
    counts["slot_pool"] = add(
        Pool.__table__,
        [
            {"pool": name, "slots": slots, "description": f"{name} (bench)", "include_deferred": False}
            for name, slots in POOLS.items()
        ],
    )
    dags, tags = [], []
    for shape in shapes:
        period = timedelta(hours=1) if shape["hourly"] else timedelta(days=1)
        latest = _latest_run_after(now, shape["hourly"], shape["offset_minutes"])
        next_logical = latest - period if shape["late"] else latest
        minute, hour = shape["offset_minutes"] % 60, shape["offset_minutes"] // 60
        dags.append(
            {
                "dag_id": shape["dag_id"],
                "is_paused": shape["paused"],
                "is_stale": False,
                "fileloc": f"/opt/airflow/dags/{shape['team']}/{shape['dag_id']}.py",
                "relative_fileloc": f"{shape['team']}/{shape['dag_id']}.py",
                "bundle_name": BUNDLE,
                "owners": shape["owner"],
                "timetable_type": "airflow.timetables.interval.CronDataIntervalTimetable",
                "timetable_summary": f"{minute} * * * *" if shape["hourly"] else f"{minute} {hour} * * *",
                "timetable_periodic": True,
                "max_active_tasks": 16,
                "max_active_runs": 16,
                "max_consecutive_failed_dag_runs": 0,
                "has_task_concurrency_limits": False,
                "last_parsed_time": now - timedelta(seconds=shape["dag_index"] % 300),
                "next_dagrun": next_logical,
                "next_dagrun_data_interval_start": next_logical,
                "next_dagrun_data_interval_end": next_logical + period,
                "next_dagrun_create_after": next_logical + period,
            }
        )
        tags += [{"dag_id": shape["dag_id"], "name": f"team:{shape['team']}"}]
        tags += [{"dag_id": shape["dag_id"], "name": shape["domain"]}]
        if shape["dag_index"] % 4 == 0:
            tags.append({"dag_id": shape["dag_id"], "name": "tier:1"})
    counts["dag"] = add(DagModel.__table__, dags)
    counts["dag_tag"] = add(DagTag.__table__, tags)
    counts["import_error"] = add(
        ParseImportError.__table__,
        [
            {
                "timestamp": now - timedelta(minutes=n),
                "filename": f"/opt/airflow/dags/{TEAMS[n]}/broken_{n}.py",
                "bundle_name": BUNDLE,
                "stacktrace": f"ModuleNotFoundError: No module named 'vendor_sdk_{n}'",
            }
            for n in range(IMPORT_ERRORS)
        ],
    )
    counts["job"] = add(
        Job.__table__,
        [
            {
                "job_type": job_type,
                "state": "running",
                "start_date": now - timedelta(days=1),
                "latest_heartbeat": now - timedelta(seconds=2),
                "hostname": "airflow-0",
                "unixname": "airflow",
            }
            for job_type in ("SchedulerJob", "TriggererJob", "DagProcessorJob")
        ],
    )
    return counts


def _latest_run_after(now: datetime, hourly: bool, offset_minutes: int) -> datetime:
    """The latest schedule tick at least a minute before now; the same as the SQL `base` below."""
    offset = timedelta(minutes=offset_minutes)
    shifted = now - timedelta(minutes=1) - offset
    truncated = shifted.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        truncated = truncated.replace(hour=0)
    return truncated + offset


def _u(key: str, stream: int, seed: int) -> str:
    """SQL for a uniform [0, 1) number, a pure function of (key, stream, seed)."""
    return f"((hashint8extended(({key})::bigint, {int(seed) * 1000 + stream}) & 2147483647)::float8 / 2147483648.0)"


def _by_task(index: str, columns: str) -> str:
    """CASE <index> WHEN 1 THEN <columns for task 1> ... END, `columns` formatted with {t}."""
    whens = " ".join(f"WHEN {t} THEN {columns.format(t=t)}" for t in range(1, len(TASKS) + 1))
    return f"CASE {index} {whens} END"


def _stage_runs_sql(seed: int) -> str:
    """bench_run: the `runs` most recent scheduled runs of all DAGs, with their outcome and task timings."""
    k = len(TASKS)
    base = (
        "date_trunc(CASE WHEN hourly THEN 'hour' ELSE 'day' END, "
        "CAST(:now AS timestamptz) - interval '1 minute' - make_interval(mins => offset_minutes)) "
        "+ make_interval(mins => offset_minutes)"
    )
    durations = ", ".join(
        f"least({MAX_TASK_SECONDS}, greatest(1.0, scale * m{t} * (0.5 + {_u(f'seq * 8 + {t}', 5, seed)})"
        f" * CASE WHEN {_u(f'seq * 8 + {t}', 6, seed)} < 0.01 THEN 3 ELSE 1 END)) AS d{t}, "
        f"1 + 4 * {_u(f'seq * 8 + {t}', 7, seed)} AS g{t}"
        for t in range(1, k + 1)
    )
    offsets = ", ".join(f"{' + '.join(f'd{j} + g{j}' for j in range(1, t)) or '0'} AS o{t}" for t in range(1, k + 1))
    span = (
        "CASE WHEN run_role = 'queued' THEN 0 "
        f"WHEN run_role = 'running' THEN {_by_task('active_task', 'o{t}')} "
        f"+ CASE WHEN active_state = 'up_for_retry' THEN {_by_task('active_task', 'd{t}')} ELSE 0 END "
        f"WHEN fail_task > 0 THEN {_by_task('fail_task', 'o{t} + d{t}')} "
        f"WHEN skip_last THEN o{k} ELSE o{k} + d{k} END"
    )
    # MATERIALIZED: inlined, every d/o/span reference would re-expand the expressions below (14 s for 400 runs).
    return f"""
CREATE TEMP TABLE bench_run ON COMMIT DROP AS
WITH shaped AS (
    SELECT b.*, CASE WHEN hourly THEN interval '1 hour' ELSE interval '1 day' END AS period, {base} AS base
    FROM bench_dag b
), candidates AS (
    SELECT s.*, s.base - n * s.period AS run_after, n,
           row_number() OVER (ORDER BY s.base - n * s.period DESC, s.dag_index) AS recency
    FROM shaped s
    CROSS JOIN LATERAL generate_series(CASE WHEN s.late THEN 1 ELSE 0 END,
                                       CASE WHEN s.hourly THEN :days * 24 ELSE :days END) AS n
), chosen AS (
    SELECT c.*, row_number() OVER (ORDER BY run_after, dag_index) AS seq,
           CASE WHEN n = 0 THEN role ELSE 'finished' END AS run_role
    FROM candidates c WHERE recency <= :runs
), decided AS MATERIALIZED (
    SELECT ch.*,
           CASE WHEN run_role = 'finished' AND {_u("seq", 1, seed)} < failure_rate
                THEN 1 + floor({_u("seq", 2, seed)} * {k})::int ELSE 0 END AS fail_task,
           run_role = 'finished' AND skips_notify AND {_u("seq", 3, seed)} < 0.1 AS skip_last,
           run_after + make_interval(secs => 2 + 8 * {_u("seq", 4, seed)}) AS queued_at,
           {durations}
    FROM chosen ch
), timed AS MATERIALIZED (
    SELECT d.*, {offsets},
           CASE WHEN run_role = 'queued' THEN NULL
                ELSE queued_at + make_interval(secs => 1 + 4 * {_u("seq", 8, seed)}) END AS start_date
    FROM decided d
), spanned AS MATERIALIZED (
    SELECT t.*, {span} AS span FROM timed t
)
-- c squeezes the latest runs so that nothing they did ends in the future.
SELECT s.*, run_after - period AS logical_date,
       'scheduled__' || to_char(run_after - period, 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00' AS run_id,
       CASE WHEN span > 0
            THEN least(1.0, greatest(0.0, extract(epoch FROM CAST(:now AS timestamptz) - interval '30 seconds'
                                                  - start_date)::float8) / span)
            ELSE 1.0 END AS c
FROM spanned s
"""


_INSERT_RUNS = """
INSERT INTO dag_run (id, dag_id, queued_at, logical_date, start_date, end_date, state, run_id, run_type, triggered_by,
                     data_interval_start, data_interval_end, run_after, last_scheduling_decision, log_template_id,
                     created_at, updated_at, clear_number, span_status)
SELECT seq, dag_id, queued_at, logical_date, start_date, ended,
       CASE WHEN run_role <> 'finished' THEN run_role WHEN fail_task > 0 THEN 'failed' ELSE 'success' END,
       run_id, 'scheduled', 'timetable', logical_date, run_after, run_after,
       coalesce(ended, CAST(:now AS timestamptz) - interval '5 seconds'), 1, queued_at,
       coalesce(ended, CAST(:now AS timestamptz)), 0, 'not_started'
FROM (SELECT r.*, CASE WHEN run_role = 'finished' THEN start_date + make_interval(secs => span * c) END AS ended
      FROM bench_run r) AS runs
ORDER BY seq
"""


def _insert_task_instances_sql(seed: int) -> str:
    """Every run's TIs: a chain where a failure makes the rest upstream_failed, running runs stop at their task."""
    k = len(TASKS)
    tasks = ", ".join(
        f"({t}, '{task_id}', '{operator}', r.o{t}, r.d{t})" for t, (task_id, operator) in enumerate(TASKS, 1)
    )
    state = (
        "CASE WHEN r.run_role = 'queued' THEN NULL "
        "WHEN r.run_role = 'running' THEN CASE WHEN t.idx < r.active_task THEN 'success' "
        "WHEN t.idx = r.active_task THEN r.active_state END "
        "WHEN r.fail_task > 0 THEN CASE WHEN t.idx < r.fail_task THEN 'success' WHEN t.idx = r.fail_task "
        "THEN 'failed' ELSE 'upstream_failed' END "
        f"WHEN r.skip_last AND t.idx = {k} THEN 'skipped' ELSE 'success' END"
    )
    serial = f"(r.seq * {k} + t.idx)"
    uuid7 = (
        "(lpad(to_hex((extract(epoch FROM r.run_after) * 1000)::bigint), 12, '0') || '7' || "
        f"lpad(to_hex({serial} & 4095), 3, '0') || '8' || lpad(to_hex({serial}), 15, '0'))::uuid"
    )
    now = "CAST(:now AS timestamptz)"
    return f"""
INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, start_date, end_date, duration, state, try_number,
                           max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight, operator,
                           custom_operator_name, queued_dttm, scheduled_dttm, last_heartbeat_at, pid, updated_at,
                           span_status, next_method, trigger_timeout)
SELECT id, task_id, dag_id, run_id, -1,
       CASE WHEN ti_state IN {EXECUTED} THEN began WHEN ti_state IN {DECIDED} THEN run_end END,
       CASE WHEN ti_state IN {ENDED} THEN ended WHEN ti_state IN {DECIDED} THEN run_end END,
       CASE WHEN ti_state IN {ENDED} THEN seconds WHEN ti_state IN {DECIDED} THEN 0 END,
       ti_state,
       CASE WHEN ti_state = 'success' THEN 1 + (v < 0.03)::int + (v < 0.005)::int WHEN ti_state = 'failed' THEN 3
            WHEN ti_state IS NULL OR ti_state IN {DECIDED} THEN 0 ELSE 1 END,
       2,
       CASE WHEN ti_state IN {EXECUTED} THEN 'worker-' || floor(v * 8)::int END, 'airflow', pool, 1, queue,
       {k + 1} - idx, operator, operator,
       CASE WHEN ti_state = 'queued' THEN {now} - make_interval(secs => 5 + 60 * v)
            WHEN ti_state IN {EXECUTED} THEN began - make_interval(secs => 1 + 3 * v) END,
       CASE WHEN ti_state = 'scheduled' THEN {now} - make_interval(secs => 5 + 30 * v)
            WHEN ti_state = 'queued' THEN {now} - make_interval(secs => 66 + 60 * v)
            WHEN ti_state IN {EXECUTED} THEN began - make_interval(secs => 5 + 3 * v) END,
       CASE WHEN ti_state = 'running' THEN {now} - make_interval(secs => 1 + 15 * v)
            WHEN ti_state IN {ENDED} THEN began + took * (0.8 + 0.2 * v) END,
       CASE WHEN ti_state = 'running' THEN 1000 + floor(v * 30000)::int END,
       CASE WHEN ti_state IN {ENDED} THEN ended WHEN ti_state IN {DECIDED} THEN run_end
            ELSE {now} - make_interval(secs => 1 + 60 * v) END,
       'not_started',
       CASE WHEN ti_state = 'deferred' THEN 'execute_complete' END,
       CASE WHEN ti_state = 'deferred' THEN {now} + interval '1 hour' END
FROM (
    SELECT {uuid7} AS id, t.task_id, r.dag_id, r.run_id, t.idx, t.operator, r.pool, r.queue, {state} AS ti_state,
           r.start_date + make_interval(secs => t.off * r.c) AS began, make_interval(secs => t.dur * r.c) AS took,
           t.dur * r.c AS seconds, r.start_date + make_interval(secs => r.span * r.c) AS run_end,
           -- least(): offsets and durations rounded to microseconds one by one could overshoot the run's end.
           least(r.start_date + make_interval(secs => t.off * r.c) + make_interval(secs => t.dur * r.c),
                 r.start_date + make_interval(secs => r.span * r.c)) AS ended,
           {_u(serial, 10, seed)} AS v
    FROM bench_run r CROSS JOIN LATERAL (VALUES {tasks}) AS t (idx, task_id, operator, off, dur)
) AS tis
"""


def _stage_deadlines_sql(seed: int) -> str:
    """Deadlines as Airflow keeps them: pending ones of active runs, and missed ones, which accumulate."""
    return f"""
CREATE TEMP TABLE bench_deadline ON COMMIT DROP AS
SELECT seq, dag_id, run_after, due, due < CAST(:now AS timestamptz) AS missed,
       md5('callback:' || seq)::uuid AS callback_id, md5('deadline:' || seq)::uuid AS id
FROM (SELECT seq, dag_id, run_after,
             CASE WHEN run_role = 'finished' THEN start_date + make_interval(secs => 0.6 * span * c)
                  ELSE run_after + interval '2 hours' END AS due
      FROM bench_run
      WHERE has_deadline AND (run_role <> 'finished' OR {_u("seq", 11, seed)} < 0.05)) AS picked
"""


_INSERT_CALLBACKS = """
INSERT INTO callback (id, type, fetch_method, data, state, priority_weight, created_at)
SELECT callback_id, 'triggerer', 'import_path',
       jsonb_build_object('path', 'dag_suite.alerts.deadline_missed', 'kwargs', jsonb_build_object('dag_id', dag_id)),
       CASE WHEN missed THEN 'success' END, 1, run_after
FROM bench_deadline
"""

_INSERT_DEADLINES = """
INSERT INTO deadline (id, created_at, last_updated_at, dagrun_id, deadline_time, missed, callback_id)
SELECT id, run_after, CASE WHEN missed THEN due ELSE run_after END, seq, due, missed, callback_id
FROM bench_deadline
"""
